"""Sets shipped over a real OpenSSH server on 127.0.0.1 to a real `drsync agent`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from drsync.demo import TABLES, create_sample_warehouse, table_dir
from tests.helpers import Sites, drsync, duck, make_sites, rows
from tests.sshd import SshServer


def ssh_extra(server: SshServer, *, port: int | None = None, known_hosts: Path | None = None,
              key: Path | None = None, more: str = "") -> str:
    return f"""primary-host-ip=127.0.0.1
restore-host-ip=127.0.0.1
username={server.user}
ssh-port={port or server.port}
ssh-key-file={key or server.client_key}
known-hosts-file={known_hosts or server.known_hosts}
remote-drsync-command={sys.executable} -m drsync
check-balance-retry-times=3
{more}"""


def ssh_sites(base: Path, server: SshServer, **kw: object) -> Sites:
    sites = make_sites(base, extra=ssh_extra(server, **kw))  # type: ignore[arg-type]
    text = sites.config.read_text().replace("transport=local", "transport=ssh")
    sites.config.write_text(text)
    return sites


def known_hosts_for_port(server: SshServer, port: int, dest: Path) -> Path:
    """The server's key, listed for another port (the fault proxy's)."""
    lines = [ln for ln in server.known_hosts.read_text().splitlines() if ln.strip()]
    dest.write_text("".join(ln.replace(f"]:{server.port} ", f"]:{port} ") + "\n" for ln in lines))
    return dest


def big_table(warehouse: Path, mb: int, files: int = 4) -> Path:
    """Incompressible data, several Parquet files."""
    path = warehouse / "big" / "raw" / "blobs"
    per = mb * (1 << 20) // files // 4096
    for _ in range(files):
        t = pa.table({"blob": pa.array([os.urandom(4096) for _ in range(per)], pa.binary())})
        write_deltalake(str(path), t, mode="append")
    return path


@pytest.fixture
def server(sshd: SshServer) -> Iterator[SshServer]:
    yield sshd


def test_full_replication_over_ssh_content_equal(server: SshServer, tmp_path: Path) -> None:
    sites = ssh_sites(tmp_path / "s", server)
    create_sample_warehouse(sites.primary, rows=40)
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    con = duck()
    for name in TABLES:
        assert rows(con, table_dir(sites.standby, name)) == rows(con, table_dir(sites.primary, name)), name
    # show-progress on the primary reads the standby's state through the agent.
    doc = json.loads(drsync("show-progress", "-c", str(sites.config), "--format", "json", check=True).stdout)
    assert doc["standby cluster"]["key"] == doc["primary cluster"]["key"] != ""
    assert doc["apply"]["restoreState"] == "waiting"


def test_agent_refuses_paths_outside_its_roots(tmp_path: Path) -> None:
    """The agent's protocol, spoken directly on a pipe (no sshd needed)."""
    from drsync.transport.protocol import read_header, write_frame

    proc = subprocess.Popen([sys.executable, "-m", "drsync", "agent", "--media-root", str(tmp_path / "m"),
                             "--metadata-root", str(tmp_path / "d")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=os.environ.copy())
    assert proc.stdin and proc.stdout
    for rel in ("../escape", "/etc/passwd", "a/../../b"):
        write_frame(proc.stdin, {"op": "write", "area": "metadata", "rel": rel}, b"x")  # type: ignore[arg-type]
        reply = read_header(proc.stdout)  # type: ignore[arg-type]
        assert reply is not None and reply["ok"] is False, rel
    write_frame(proc.stdin, {"op": "rm", "area": "metadata", "rel": "x"})  # type: ignore[arg-type]
    reply = read_header(proc.stdout)  # type: ignore[arg-type]
    assert reply is not None and reply["ok"] is False and "unknown operation" in reply["error"]
    write_frame(proc.stdin, {"op": "bye"})  # type: ignore[arg-type]
    proc.wait(timeout=10)
    assert not (tmp_path / "escape").exists()


def test_verify_over_ssh_hashes_each_side_where_it_lives(server: SshServer, tmp_path: Path) -> None:
    """verify on the standby asks the primary's agent for its fingerprints (the wrapper proves
    the agent ran with the primary's warehouse); a flipped byte on the standby is found."""
    calls = tmp_path / "agent-calls.txt"
    wrapper = tmp_path / "drsync-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {sys.executable} -m drsync "$@"\n')
    wrapper.chmod(0o755)
    sites = ssh_sites(tmp_path / "s", server)
    sites.config.write_text(sites.config.read_text().replace(
        f"remote-drsync-command={sys.executable} -m drsync", f"remote-drsync-command={wrapper}"))
    create_sample_warehouse(sites.primary, rows=30)
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    calls.unlink()

    ok = drsync("verify", "-c", str(sites.config), "--deep", check=True)
    assert f"{len(TABLES)} of {len(TABLES)} table(s) equal" in ok.stdout
    assert f"--warehouse-root {sites.primary}" in calls.read_text()

    victim = sorted(table_dir(sites.standby, TABLES[0]).rglob("*.parquet"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.chmod(0o644)
    victim.write_bytes(bytes(data))
    bad = drsync("verify", "-c", str(sites.config), "--table", TABLES[0])
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"{victim.name} differs between primary and standby" in bad.stdout.replace("\n", "")


def test_agent_fingerprint_refuses_names_and_paths_leaving_the_warehouse(tmp_path: Path) -> None:
    from drsync.transport.protocol import read_header, write_frame

    wh = tmp_path / "wh"
    create_sample_warehouse(wh, rows=5)
    proc = subprocess.Popen([sys.executable, "-m", "drsync", "agent", "--media-root", str(tmp_path / "m"),
                             "--metadata-root", str(tmp_path / "d"), "--warehouse-root", str(wh)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=os.environ.copy())
    assert proc.stdin and proc.stdout

    def ask(**req: object) -> dict[str, object]:
        write_frame(proc.stdin, {"op": "fingerprint", **req})  # type: ignore[arg-type]
        reply = read_header(proc.stdout)  # type: ignore[arg-type]
        assert reply is not None
        return reply

    good = ask(table=TABLES[0], version=0)
    assert good["ok"] is True and good["fingerprint"]["needs"]  # type: ignore[index]
    for bad in ({"table": "..x.y", "version": 0}, {"table": "a./etc.b", "version": 0},
                {"table": TABLES[0], "version": 0, "also_hash": ["../../../../etc/passwd"]},
                {"table": TABLES[0], "version": "0"}):
        reply = ask(**bad)
        assert reply["ok"] is False, bad
    write_frame(proc.stdin, {"op": "bye"})  # type: ignore[arg-type]
    proc.wait(timeout=10)


def test_bandwidth_limit_throttles_the_link(server: SshServer, tmp_path: Path) -> None:
    sites = ssh_sites(tmp_path / "s", server, more="bandwidth-limit=2MB/s\ncompression-level=0\n")
    sites.config.write_text(sites.config.read_text().replace("compression-level=1\n", ""))
    big_table(sites.primary, mb=10, files=2)
    start = time.monotonic()
    drsync("backup", "-c", str(sites.config), check=True)
    elapsed = time.monotonic() - start
    # ~10.5 MB at 2 MB/s (after a 1 s burst): >= ~4.2 s. Unthrottled, the same backup took
    # 1.3 s here, CLI start-up and SSH login included.
    assert elapsed >= 3.5, f"bandwidth-limit=2MB/s not honoured: {elapsed:.2f} s"
    drsync("restore", "-c", str(sites.config), check=True)
    t = sites.primary / "big" / "raw" / "blobs"
    assert rows(duck(), sites.standby / "big" / "raw" / "blobs") == rows(duck(), t)


def test_primary_triggers_a_restore_pass_when_remote_config_is_set(server: SshServer, tmp_path: Path) -> None:
    sites = ssh_sites(tmp_path / "s", server)
    # This host is both sites: the standby's backupRestore.ini is the same file.
    sites.config.write_text(sites.config.read_text() + f"remote-config-file={sites.config}\n")
    create_sample_warehouse(sites.primary, rows=20)
    drsync("backup", "-c", str(sites.config), check=True)  # no `drsync restore` at all
    con = duck()
    for name in TABLES:
        assert rows(con, table_dir(sites.standby, name)) == rows(con, table_dir(sites.primary, name)), name
    r = drsync("restore", "-c", str(sites.config), check=True)
    assert "nothing to restore" in r.stdout


def test_links_negotiate_aes_gcm_with_openssh(server: SshServer, tmp_path: Path) -> None:
    """AES-GCM is preferred (no separate MAC: measured +27-33 % shipping on 2 cores)."""
    from drsync.config import load_settings
    from drsync.transport.ssh import SshTransport

    sites = ssh_sites(tmp_path / "s", server)
    with SshTransport(load_settings(sites.config)) as t:
        link = t._idle[0]
        transport = link.client.get_transport()
        assert transport is not None
        assert transport.local_cipher == "aes128-gcm@openssh.com", transport.local_cipher
