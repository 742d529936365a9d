"""A real OpenSSH server on 127.0.0.1 for tests, started and stopped by the tests themselves.

Never a system service: ``start_sshd(workdir)`` runs ``/usr/sbin/sshd -D -e -f <workdir>/sshd_config``
as a child process of the test run, on a free port of 127.0.0.1 only, with throwaway keys made by
``ssh-keygen`` in ``workdir``. ``SshServer.stop()`` ends it (and its live sessions); it is also
stopped at interpreter exit, and (through ``setpriv --pdeathsig``) when the thread that started it
dies, so a killed test run leaves no sshd behind (start it from a thread that lives as long as it:
the main thread, as fixtures do).

Remote commands run through the login user's shell (``<shell> -c '<command>'``) with the usual
sshd environment: pass full paths (e.g. ``sys.executable``) in commands so that PATH does not
matter, or pass ``env_path`` to ``start_sshd`` to set PATH for sessions (``SetEnv``). Sessions get
SHLVL=1 unless ``shell_rc=True``, so bash does not read ``~/.bashrc`` for them (root's here runs
``pyenv init`` and prepends to PATH).

The module needs no pytest; with pytest present it also defines two fixtures that a conftest can
re-export (``from tests.sshd import sshd, private_sshd  # noqa: F401``):

* ``sshd`` (session scope): one server shared by the whole run. Do not leave it changed
  (``set_forced_command`` must be undone in a ``finally``).
* ``private_sshd`` (function scope): a server of its own, for tests that change or break it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without it
START_TIMEOUT_S = 15.0

_live: set[SshServer] = set()


@dataclass(eq=False)
class SshServer:
    host: str
    port: int
    user: str
    client_key: Path  # private key (ed25519, no passphrase) accepted by the server
    known_hosts: Path  # exactly this server's host key, as "[127.0.0.1]:PORT ssh-ed25519 ..."
    host_key_fingerprint: str  # "SHA256:..." as `ssh-keygen -lf` prints it
    wrong_key: Path  # a client key the server does not accept
    other_known_hosts: Path  # a different key for [127.0.0.1]:PORT (the changed-key case)
    authorized_keys: Path
    workdir: Path = Path()
    log_path: Path = Path()  # sshd's own log (-e, LogLevel VERBOSE)
    host_public_key: str = ""  # "ssh-ed25519 AAAA..." (no comment)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log_file: object = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """End the live sessions, then the listener (SIGTERM, then SIGKILL). Idempotent."""
        proc, self._proc = self._proc, None
        _live.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            _kill_sshd_descendants(proc.pid)
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        log = self._log_file
        self._log_file = None
        if log is not None:
            log.close()  # type: ignore[attr-defined]

    def kill_connections(self) -> None:
        """SIGKILL every per-connection sshd process (not the listener, which keeps accepting).

        Live sessions break: the client sees the TCP connection closed; the remote commands (not
        killed) see EOF on stdin and EPIPE on stdout, as after sshd noticed a dead network.
        Returns once the killed processes are gone. A session whose command is not started yet
        (sshd forked, not yet exec'd) loses it too. Orphans are reparented to PID 1; in this
        container PID 1 does not reap them, so they stay as zombies (harmless).
        """
        if self._proc is None or self._proc.poll() is not None:
            return
        _kill_sshd_descendants(self._proc.pid)

    def set_forced_command(self, command: str | None) -> None:
        """Rewrite authorized_keys: with ``command="...",restrict`` on the key, or plain (None).

        sshd reads the file at each login, so this applies to new connections. The client's own
        command is in $SSH_ORIGINAL_COMMAND for the forced command.
        """
        _write_authorized_keys(self.authorized_keys, self.client_key.with_suffix(".pub"), command)

    def known_hosts_for(self, port: int, dest: Path | None = None) -> Path:
        """A known_hosts listing this server's key for another port of 127.0.0.1 (a proxy's)."""
        dest = dest or self.workdir / f"known_hosts_{port}"
        dest.write_text(f"[{self.host}]:{port} {self.host_public_key}\n")
        return dest

    def ssh_command(self, *command: str, port: int | None = None, key: Path | None = None,
                    known_hosts: Path | None = None) -> list[str]:
        """argv for the OpenSSH client (strict host key checking, batch mode), e.g. for rsync -e."""
        argv = [
            "ssh", "-p", str(port or self.port), "-i", str(key or self.client_key),
            "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts or self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-l", self.user, self.host,
        ]
        return argv + list(command)


def start_sshd(workdir: Path, *, user: str = "root", env_path: str | None = None,
               shell_rc: bool = False) -> SshServer:
    """Start sshd on a free port of 127.0.0.1 with fresh keys in ``workdir``; wait until it listens.

    ``env_path``: PATH for sessions (sshd ``SetEnv``). ``shell_rc=False`` (default) sets SHLVL=1 in
    sessions, which makes bash skip ``~/.bashrc`` for ssh commands (here root's runs ``pyenv init``:
    +0.2 s per command, and it changes PATH); True keeps the user's usual behaviour.
    """
    if not os.access(SSHD, os.X_OK):
        raise RuntimeError(f"{SSHD} not found: install openssh-server (make sysdeps)")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)

    host_key = workdir / "ssh_host_ed25519_key"
    other_host_key = workdir / "other_host_ed25519_key"
    client_key = workdir / "client_ed25519"
    wrong_key = workdir / "wrong_ed25519"
    for path in (host_key, other_host_key, client_key, wrong_key):
        _keygen(path)
    authorized_keys = workdir / "authorized_keys"
    _write_authorized_keys(authorized_keys, client_key.with_suffix(".pub"), None)
    host_pub = _pubkey(host_key)
    fingerprint = _fingerprint(host_key)

    log_path = workdir / "sshd.log"
    config = workdir / "sshd_config"
    errors = []
    for _attempt in range(5):  # a free port can be taken between probe and bind: try another
        port = _free_port()
        config.write_text(_config_text(workdir, port, host_key, authorized_keys, user, env_path, shell_rc))
        log_path.write_bytes(b"")
        log_file = log_path.open("ab")
        proc = subprocess.Popen(
            [*_pdeathsig_prefix(), SSHD, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, close_fds=True,
        )
        ok, text = _wait_listening(proc, log_path, port)
        if ok:
            break
        log_file.close()
        errors.append(text)
        if "Address already in use" not in text and "Cannot bind any address" not in text:
            break
    else:
        ok = False
    if not ok:
        raise RuntimeError(f"sshd did not start ({SSHD} -D -e -f {config}); its output:\n"
                           + "\n---\n".join(errors))

    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    other_known_hosts = workdir / "other_known_hosts"
    other_known_hosts.write_text(f"[127.0.0.1]:{port} {_pubkey(other_host_key)}\n")
    server = SshServer(
        host="127.0.0.1", port=port, user=user, client_key=client_key, known_hosts=known_hosts,
        host_key_fingerprint=fingerprint, wrong_key=wrong_key, other_known_hosts=other_known_hosts,
        authorized_keys=authorized_keys, workdir=workdir, log_path=log_path, host_public_key=host_pub,
        _proc=proc, _log_file=log_file,
    )
    _live.add(server)
    return server


# -- internals ---------------------------------------------------------------------------------


def _config_text(workdir: Path, port: int, host_key: Path, authorized_keys: Path, user: str,
                 env_path: str | None, shell_rc: bool) -> str:
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        "AddressFamily inet",
        f"HostKey {host_key}",
        f"PidFile {workdir / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized_keys}",
        "AuthorizedKeysCommand none",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "HostbasedAuthentication no",
        "PermitEmptyPasswords no",
        "PermitRootLogin prohibit-password",
        f"AllowUsers {user}",
        "StrictModes no",
        "UsePAM no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "PermitUserEnvironment no",
        "X11Forwarding no",
        "AllowAgentForwarding no",
        "AllowTcpForwarding no",
        "MaxSessions 64",
        "MaxStartups 64:30:100",
        "MaxAuthTries 6",
        "LoginGraceTime 30",
        "LogLevel VERBOSE",
        "Subsystem sftp internal-sftp",
    ]
    setenv = []
    if env_path is not None:
        setenv.append(f'"PATH={env_path}"')
    if not shell_rc:
        setenv.append("SHLVL=1")  # bash reads ~/.bashrc for ssh commands only when SHLVL < 2
    if setenv:
        lines.append("SetEnv " + " ".join(setenv))
    return "\n".join(lines) + "\n"


def _keygen(path: Path) -> None:
    for p in (path, path.with_suffix(".pub")):
        p.unlink(missing_ok=True)
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", f"drsync-test-{path.name}",
                    "-f", str(path)], check=True, capture_output=True)


def _pubkey(private: Path) -> str:
    """'ssh-ed25519 AAAA...' without the comment."""
    return " ".join(private.with_suffix(".pub").read_text().split()[:2])


def _fingerprint(private: Path) -> str:
    out = subprocess.run([SSH_KEYGEN, "-lf", str(private.with_suffix(".pub"))], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1]  # "256 SHA256:... comment (ED25519)"


def _write_authorized_keys(path: Path, pub: Path, command: str | None) -> None:
    key = _pubkey(pub.with_suffix(""))
    if command is None:
        line = key
    else:
        escaped = command.replace("\\", "\\\\").replace('"', '\\"')
        line = f'command="{escaped}",restrict {key}'
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(line + "\n")
    tmp.replace(path)  # atomic: a login in progress reads the old or the new file


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pdeathsig_prefix() -> list[str]:
    # sshd gets SIGTERM if the thread that started it dies (e.g. pytest killed with SIGKILL).
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def _wait_listening(proc: subprocess.Popen[bytes], log_path: Path, port: int) -> tuple[bool, str]:
    needle = f"Server listening on 127.0.0.1 port {port}."
    deadline = time.monotonic() + START_TIMEOUT_S
    delay = 0.005
    while True:
        text = log_path.read_text(errors="replace")
        if needle in text:
            return True, text
        if proc.poll() is not None:
            return False, f"exit status {proc.returncode}\n{text}"
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            return False, f"not listening after {START_TIMEOUT_S:.0f} s\n{text}"
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def _is_live_sshd(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z" and os.readlink(f"/proc/{pid}/exe") == SSHD
    except OSError:
        return False


def _kill_sshd_descendants(root: int) -> None:
    """SIGKILL the sshd processes under ``root`` (per-connection children and their privsep
    children, not the commands they run); wait until they are gone."""
    kids = _children()
    todo, found = list(kids.get(root, [])), []
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, []))
        if _is_live_sshd(pid):
            found.append(pid)
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_is_live_sshd(pid) for pid in found):
        time.sleep(0.005)


@atexit.register
def _stop_all() -> None:
    for server in list(_live):
        server.stop()


# -- pytest fixtures -----------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the helper works without pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session", name="sshd")
    def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
        """One sshd for the whole session. Leave it as found (undo set_forced_command)."""
        server = start_sshd(tmp_path_factory.mktemp("sshd"))
        try:
            yield server
        finally:
            server.stop()

    @pytest.fixture(name="private_sshd")
    def private_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
        """An sshd for one test alone: free to change its authorized_keys or cut its sessions."""
        server = start_sshd(tmp_path_factory.mktemp("private_sshd"))
        try:
            yield server
        finally:
            server.stop()
