"""`drsync daemon` on both sides with transport=ssh: the primary ships through the real sshd
on 127.0.0.1 to a real `drsync agent`, the standby daemon restores, both driven over HTTP.

Both daemons read the same config file. On this single host both state files exist, so each is
told its role (`--role`); `--tick 1` runs every job every second. The SSH sessions are cut
while the primary daemon runs: it must reconnect on its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from drsync.demo import ROUND_WRITES, TABLES, create_sample_warehouse, table_dir
from drsync.site.state import StandbyState, load_state
from tests.helpers import Sites, drsync, duck, rows
from tests.integration.test_ssh import ssh_sites
from tests.sshd import SshServer

TIMEOUT = 60.0  # generous: a loaded 2-core machine runs two daemons, sshd, agents and writers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    """`drsync daemon -c CFG --role R --tick 1` as a subprocess, its stderr kept in a file."""

    def __init__(self, config: Path, role: str, port: int, workdir: Path) -> None:
        self.config, self.role = config, role
        self.err = workdir / f"{role}-daemon.stderr"
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "drsync", "daemon", "-c", str(self.config), "--role", self.role,
                 "--tick", "1"], stdout=subprocess.DEVNULL, stderr=err,
                env={k: v for k, v in os.environ.items() if k != "DRSYNC_DEBUG"})

    @property
    def log(self) -> str:
        return self.err.read_text(errors="replace") if self.err.exists() else "(no log)"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str) -> Any:
        return self.http.get(path).json()

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None


class Pair:
    def __init__(self, sites: Sites, primary: Daemon, standby: Daemon) -> None:
        self.sites, self.primary, self.standby = sites, primary, standby

    def logs(self) -> str:
        return "".join(f"\n--- {d.role} daemon log ({d.err}):\n{d.log[-6000:]}"
                       for d in (self.primary, self.standby))

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = TIMEOUT,
                 every: float = 0.3) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            for d in (self.primary, self.standby):
                if d.proc is not None and not d.alive():
                    raise AssertionError(f"the {d.role} daemon exited ({d.proc.returncode}) while "
                                         f"waiting for {what}{self.logs()}")
            try:
                last = check()
                if last:
                    return last
            except (httpx.TransportError, ValueError, KeyError) as e:  # not listening yet, or mid-restart
                last = e
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}{self.logs()}")

    def caught_up(self, after: str = "") -> str:
        """The newest key the standby fully restored once it is at or past `after`, else ''.

        A condition that stays true once reached: the standby's `last_key` only grows. (Asking
        for the primary's newest key to equal the standby's at one poll raced the schedule: the
        primary cuts a set every second and the standby is always about one behind.)"""
        restored = load_state(self.sites.standby_meta, StandbyState).last_key or ""
        return restored if restored and restored >= after else ""

    def assert_tables_equal(self) -> None:
        con = duck()
        for name in TABLES:
            p, s = table_dir(self.sites.primary, name), table_dir(self.sites.standby, name)
            assert rows(con, s) == rows(con, p), f"{name} differs on the standby{self.logs()}"


def key_after_now() -> str:
    """A key no round cut before now can have (keys are UTC seconds, sometimes bumped by one)."""
    return (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y%m%d_%H%M%S")


@contextmanager
def ssh_pair(sshd: SshServer, tmp_path: Path, more: str = "") -> Iterator[Pair]:
    """Two daemons (not started) over the real sshd, both sites on this host, with data."""
    p_port, s_port = free_port(), free_port()
    sites = ssh_sites(tmp_path / "s", sshd, more=f"backup-port={p_port}\nrestore-port={s_port}\n{more}")
    create_sample_warehouse(sites.primary, rows=30)
    # Both sites live on this host: a daemon that finds only the other side's state file here
    # refuses its --role, so whichever daemon's first pass wrote first would race the other's
    # start. One round by the CLI first gives each side its state file.
    for op in ("backup", "restore"):
        r = drsync(op, "-c", str(sites.config), timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    primary = Daemon(sites.config, "primary", p_port, tmp_path)
    standby = Daemon(sites.config, "standby", s_port, tmp_path)
    pair = Pair(sites, primary, standby)
    try:
        yield pair
    finally:
        for d in (primary, standby):
            d.stop()
            d.http.close()
        print(pair.logs())  # shown when the test failed


@pytest.fixture
def pair(sshd: SshServer, tmp_path: Path) -> Iterator[Pair]:
    with ssh_pair(sshd, tmp_path) as p:
        yield p


def test_primary_daemon_ships_over_ssh_survives_cut_sessions(sshd: SshServer, pair: Pair) -> None:
    sites, primary, standby = pair.sites, pair.primary, pair.standby
    standby.start()
    primary.start()
    pair.wait_for("both APIs", lambda: primary.http.get("/status").status_code == 200
                  and standby.http.get("/status").status_code == 200)

    # the first (full) set, shipped over SSH and restored by the standby daemon
    pair.wait_for("the first set restored", pair.caught_up)
    assert primary.get("/status")["role"] == "primary" and standby.get("/status")["role"] == "standby"
    assert any(sites.standby_media.rglob("*.tar.zst")), "no bundle arrived through the agent"
    pair.assert_tables_equal()

    # one more write round arrives too
    ROUND_WRITES[0](sites.primary, 1)
    written = key_after_now()
    pair.wait_for("the append replicated", lambda: pair.caught_up(after=written))
    pair.assert_tables_equal()

    shipped = [line for line in primary.http.get("/metrics").text.splitlines()
               if line.startswith("drsync_bytes_shipped_total")]
    assert shipped and float(shipped[0].split()[1]) > 0, (shipped, pair.logs())

    # cut every SSH session while the daemon runs (its link is kept open across rounds)
    sshd.kill_connections()
    ROUND_WRITES[3](sites.primary, 1)  # merge
    ROUND_WRITES[1](sites.primary, 1)  # overwrite
    written = key_after_now()
    pair.wait_for("a write after the cut replicated", lambda: pair.caught_up(after=written))
    pair.wait_for("the primary healthy again", lambda: primary.http.get("/healthz").status_code == 200)
    assert primary.alive() and standby.alive()
    pair.assert_tables_equal()

    # SIGTERM: both finish their step and exit 0; the standby equals the primary at the last barrier
    codes = {d.role: d.stop() for d in (primary, standby)}
    assert codes == {"primary": 0, "standby": 0}, f"{codes}{pair.logs()}"
    assert "daemon stopped" in primary.log and "daemon stopped" in standby.log
    verify = drsync("verify", "-c", str(sites.config), "--deep", timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr + pair.logs()
