"""The test sshd (tests/sshd.py) with paramiko, directly and through the FaultProxy."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import paramiko
import pytest

from tests.faultproxy import FaultProxy
from tests.sshd import SshServer, start_sshd

# The fixtures "sshd" and "private_sshd" come from tests/conftest.py (re-exported from tests.sshd).

MB = 1 << 20


def connect(server: SshServer, *, port: int | None = None, key: Path | None = None,
            known_hosts: Path | None = None) -> paramiko.SSHClient:
    """Strict host key checking: only the keys in known_hosts, never a key from elsewhere."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts or server.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(server.host, port=port or server.port, username=server.user,
                       key_filename=str(key or server.client_key), allow_agent=False, look_for_keys=False,
                       timeout=10, banner_timeout=10, auth_timeout=10)
    except BaseException:
        client.close()
        raise
    return client


def transport(client: paramiko.SSHClient) -> paramiko.Transport:
    t = client.get_transport()
    assert t is not None
    return t


def run(client: paramiko.SSHClient, command: str) -> tuple[int, bytes]:
    _, stdout, _ = client.exec_command(command, timeout=10)
    out = stdout.read()
    return stdout.channel.recv_exit_status(), out


def wait_until(cond: Callable[[], object], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_exec_with_strict_host_key_checking(sshd: SshServer) -> None:
    with connect(sshd) as c:
        assert run(c, "echo hello") == (0, b"hello\n")
        # The fingerprint reported is the key the server presented.
        key = transport(c).get_remote_server_key()
        digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
        assert sshd.host_key_fingerprint == f"SHA256:{digest}"
    assert sshd.known_hosts.read_text() == f"[127.0.0.1]:{sshd.port} {sshd.host_public_key}\n"


def test_wrong_key_is_refused(sshd: SshServer) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        connect(sshd, key=sshd.wrong_key)


def test_changed_host_key_is_refused(sshd: SshServer) -> None:
    with pytest.raises(paramiko.BadHostKeyException):
        connect(sshd, known_hosts=sshd.other_known_hosts)


def test_unknown_host_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts") as e:
        connect(sshd, known_hosts=empty)
    assert not isinstance(e.value, paramiko.BadHostKeyException)


def test_openssh_client_command(sshd: SshServer) -> None:
    p = subprocess.run(sshd.ssh_command("echo", "hi"), capture_output=True, text=True, timeout=20)
    assert (p.returncode, p.stdout) == (0, "hi\n"), p.stderr


def test_forced_command_replaces_the_clients(private_sshd: SshServer) -> None:
    private_sshd.set_forced_command('echo forced; echo "orig=$SSH_ORIGINAL_COMMAND"')
    with connect(private_sshd) as c:
        assert run(c, "echo hello") == (0, b"forced\norig=echo hello\n")
    private_sshd.set_forced_command(None)
    with connect(private_sshd) as c:
        assert run(c, "echo hello") == (0, b"hello\n")


def test_kill_connections_breaks_live_sessions(private_sshd: SshServer, tmp_path: Path) -> None:
    marker = tmp_path / "cat-ended"
    with connect(private_sshd) as c:
        chan = transport(c).open_session()
        chan.settimeout(10)
        chan.exec_command(f"echo started; cat; echo ended > {marker}")
        assert chan.recv(100) == b"started\n"  # the command runs (before, its sshd fork may be killed)
        private_sshd.kill_connections()
        assert chan.status_event.wait(10), "the session outlived kill_connections"
        assert chan.exit_status == -1  # no exit status: the connection broke
        assert wait_until(lambda: not transport(c).is_active())
    assert wait_until(marker.exists)  # the remote command saw EOF on stdin (it was not killed)
    with connect(private_sshd) as c:  # the listener still accepts
        assert run(c, "echo again") == (0, b"again\n")


def test_env_path_and_stop(tmp_path: Path) -> None:
    server = start_sshd(tmp_path / "srv", env_path="/opt/nowhere:/usr/bin:/bin")
    try:
        with connect(server) as c:
            # ~/.bashrc is skipped (shell_rc=False): PATH is exactly env_path.
            assert run(c, "echo $PATH") == (0, b"/opt/nowhere:/usr/bin:/bin\n")
            c2 = connect(server)
            pid = server.pid
            server.stop()
            assert wait_until(lambda: not transport(c2).is_active())
            c2.close()
    finally:
        server.stop()
    assert pid is not None and not Path(f"/proc/{pid}").exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2)


def test_exec_through_proxy_with_latency(sshd: SshServer) -> None:
    with FaultProxy(sshd.host, sshd.port, latency_s=0.05) as proxy:
        t0 = time.monotonic()
        with connect(sshd, port=proxy.port, known_hosts=sshd.known_hosts_for(proxy.port)) as c:
            assert run(c, "echo hello") == (0, b"hello\n")
        took = time.monotonic() - t0
        # Handshake, auth, channel, exec: several round trips of 0.1 s each.
        assert 0.4 <= took < 10, took
        assert proxy.connections == 1 and proxy.bytes_up > 0 and proxy.bytes_down > 0


def upload(c: paramiko.SSHClient, data: bytes) -> float:
    chan = transport(c).open_session()
    chan.settimeout(30)
    t0 = time.monotonic()
    chan.exec_command("cat > /dev/null")
    chan.sendall(data)
    chan.shutdown_write()
    assert chan.recv_exit_status() == 0
    return time.monotonic() - t0


def test_throttle_slows_an_upload(sshd: SshServer) -> None:
    data = os.urandom(2 * MB)
    with FaultProxy(sshd.host, sshd.port) as proxy, connect(
            sshd, port=proxy.port, known_hosts=sshd.known_hosts_for(proxy.port)) as c:
        fast = upload(c, data)
        proxy.rate_bytes_per_s = MB
        slow = upload(c, data)
        assert 1.6 <= slow < 12, (fast, slow)  # 2 MiB at 1 MiB/s (+ SSH framing, - a 20 KiB burst)
        assert slow > 3 * fast, (fast, slow)


def test_cut_after_bytes_breaks_the_session(sshd: SshServer) -> None:
    with FaultProxy(sshd.host, sshd.port) as proxy, connect(
            sshd, port=proxy.port, known_hosts=sshd.known_hosts_for(proxy.port)) as c:
        proxy.cut_after_bytes = proxy.bytes_up + 200_000
        chan = transport(c).open_session()
        chan.settimeout(10)
        chan.exec_command("cat > /dev/null")
        try:
            chan.sendall(os.urandom(MB))
            chan.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException):
            pass  # the cut may show here, or only as a missing exit status below
        assert chan.status_event.wait(10)
        assert chan.exit_status == -1
        assert wait_until(lambda: not transport(c).is_active())
        assert proxy.cuts == 1
        # A new connection is cut at the same point; without the limit it works again.
        proxy.cut_after_bytes = None
        with connect(sshd, port=proxy.port, known_hosts=sshd.known_hosts_for(proxy.port)) as c2:
            assert run(c2, "echo back") == (0, b"back\n")
