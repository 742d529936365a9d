"""`drsync daemon` as real processes on both sides (transport=local), driven over HTTP.

Each daemon runs `python -m drsync daemon ... --tick 1` (every job every second instead of the
configured >= 10 s) on a free port of 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
import schemathesis
from deltalake import write_deltalake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok

from drsync.demo import ROUND_WRITES, create_sample_warehouse, write_config
from drsync.site.state import PrimaryState, StandbyState, load_state, local_time
from tests.helpers import Sites, drsync

TOKEN = "daemon-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except httpx.TransportError as e:  # not listening yet
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class DaemonProcess:
    def __init__(self, config: Path, role: str, port: int, workdir: Path) -> None:
        self.config, self.role, self.workdir = config, role, workdir
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=10)
        self.proc: subprocess.Popen[bytes] | None = None
        self.err = workdir / f"{role}.stderr"

    def start(self) -> None:
        self.err = self.workdir / f"{self.role}-{time.monotonic_ns()}.stderr"
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "drsync", "daemon", "-c", str(self.config), "--role", self.role,
                 "--tick", "1"], stdout=subprocess.DEVNULL, stderr=err,
                env={k: v for k, v in os.environ.items() if k != "DRSYNC_DEBUG"})
        wait_for(f"{self.role} API", lambda: self.http.get("/status").status_code == 200)

    @property
    def log(self) -> str:
        return self.err.read_text()

    def get(self, path: str) -> Any:
        return self.http.get(path).json()

    def decision(self, job: str | None = None) -> str:
        return str(self.get("/status")["jobs"][job or ("backup" if self.role == "primary" else "restore")]
                   ["last_decision"])

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def moved_to(self, port: int) -> None:
        """Talk to `port` from now on (after a role change with transport=local the two daemons
        exchange ports)."""
        self.http.close()
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def stop(self, timeout: float = 20) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def wait_on_swapped(moves: list[tuple[DaemonProcess, int]], swapped: Path, auth: dict[str, str],
                    timeout: float = 60) -> None:
    """After a switchover: each daemon restarted itself into `swapped` and serves on its new port
    (/status names the config file only to a token holder)."""
    for d, port in moves:
        d.moved_to(port)
    for d, _ in moves:
        wait_for(f"the {d.role} daemon on the swapped file",
                 lambda d=d: d.http.get("/status", headers=auth).json()["config"] == str(swapped),  # type: ignore[misc]
                 timeout=timeout)


@pytest.fixture
def daemons() -> Any:
    started: list[DaemonProcess] = []

    def launch(config: Path, role: str, port: int, workdir: Path) -> DaemonProcess:
        started.append(DaemonProcess(config, role, port, workdir))
        started[-1].start()
        return started[-1]

    yield launch
    for d in started:
        d.stop()
        d.http.close()
        # shown when the test failed
        print(f"--- {d.role} daemon log:\n{d.log if d.err.exists() else '(none)'}")


def _site_with_ports(tmp_path: Path, extra: str = "", grace: str = "0s") -> tuple[Sites, int, int]:
    p_port, s_port = free_port(), free_port()
    base = tmp_path / "sites"
    (base / "primary" / "warehouse").mkdir(parents=True)
    (base / "standby" / "warehouse").mkdir(parents=True)
    cfg = write_config(base, grace=grace, extra=f"backup-port={p_port}\nrestore-port={s_port}\n{extra}")
    return Sites(base, cfg), p_port, s_port


def _key_after_now() -> str:
    """A key no round cut before now can have (keys are UTC seconds, sometimes bumped by one)."""
    return (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y%m%d_%H%M%S")


def _caught_up(sites: Sites, after: str = "") -> str:
    """The newest key the standby fully restored once it is at or past `after`, else ''.

    It stays true once reached (`last_key` only grows), so it cannot race the two schedules."""
    restored = load_state(sites.standby_meta, StandbyState).last_key or ""
    return restored if restored and restored >= after else ""


def test_daemons_replicate_obey_intent_and_serve_the_api(tmp_path: Path, daemons: Any) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "token").chmod(0o600)
    sites, p_port, s_port = _site_with_ports(tmp_path, f"api-token-file={tmp_path / 'token'}\nrpo-target=1h")
    # the standby host's own file: the same pair, without a token (its mutating endpoints are off)
    standby_cfg = tmp_path / "standby.ini"
    standby_cfg.write_text(sites.config.read_text().replace(f"api-token-file={tmp_path / 'token'}", ""))
    create_sample_warehouse(sites.primary, rows=30)
    standby = daemons(standby_cfg, "standby", s_port, tmp_path)
    primary = daemons(sites.config, "primary", p_port, tmp_path)
    wait_for("first set restored", lambda: _caught_up(sites))

    ROUND_WRITES[0](sites.primary, 1)
    written = _key_after_now()
    wait_for("the write replicated", lambda: _caught_up(sites, after=written))

    # stop-backup as the CLI records it: the loop honours it, the state says `stopped`
    drsync("stop-backup", "-c", str(sites.config), check=True)
    wait_for("backup stopped", lambda: primary.get("/progress")["apply"]["backupState"] == "stopped")
    # the CLI shows `stopped` at once (daemon/oneshot.py); the loop's own pause follows at its next pass
    wait_for("the loop paused", lambda: primary.get("/status")["paused"] == "stopped by stop-backup")
    # backup is stopped, so the primary's newest key no longer moves: equality stays true
    stopped_at = wait_for("standby caught up", lambda: _caught_up(sites)
                          == primary.get("/progress")["primary cluster"]["key"] and _caught_up(sites))
    time.sleep(2.5)
    assert primary.get("/progress")["primary cluster"]["key"] == stopped_at  # no new round
    assert "no round: backup is stopped by stop-backup" in primary.decision()
    assert drsync("verify", "-c", str(sites.config)).returncode == 0

    # the API's intents: token required; disabled where no api-token-file is set
    assert primary.http.post("/start-backup").status_code == 401
    assert primary.http.post("/start-backup", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert standby.http.post("/stop-restore", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert primary.http.post("/start-backup", headers=auth).json()["message"] == "backup resumed"
    wait_for("rounds again", lambda: primary.get("/progress")["primary cluster"]["key"] > stopped_at)
    assert primary.http.post("/stop-backup", headers=auth).status_code == 202
    wait_for("stopped via API", lambda: primary.get("/progress")["apply"]["backupState"] == "stopped")
    assert TOKEN not in primary.log

    # health and metrics on both sides
    for d in (primary, standby):
        assert d.http.get("/healthz").json() == {"status": "ok"}
        metrics = d.http.get("/metrics").text
        assert "drsync_rpo_seconds " in metrics
        assert 'drsync_table_lag_seconds{table="sales.public.orders"}' in metrics
    assert 'drsync_state{side="primary",state="stopped"} 1.0' in primary.http.get("/metrics").text
    applied = [line for line in standby.http.get("/metrics").text.splitlines()
               if line.startswith("drsync_bytes_applied_total")]
    assert float(applied[0].split()[1]) > 0

    # SIGHUP with a broken file: logged in one line, the old config stays, passes go on
    good = standby_cfg.read_text()
    standby_cfg.write_text(good + "restore-interval=soon\n")
    standby.signal(signal.SIGHUP)
    wait_for("reload refused", lambda: "not reloaded" in standby.get("/status")["reload"])
    before = standby.get("/status")["jobs"]["restore"]["decided_at"]
    wait_for("restores go on", lambda: standby.get("/status")["jobs"]["restore"]["decided_at"] != before)
    assert "configuration" in standby.log and "not reloaded, keeping the previous one" in standby.log
    assert standby.http.get("/healthz").status_code == 200
    standby_cfg.write_text(good)

    _no_500_from_the_served_openapi(primary.url)
    assert primary.stop() == 0 and standby.stop() == 0
    assert "daemon stopped" in primary.log


def _no_500_from_the_served_openapi(url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "GET /progress", "GET /healthz", "GET /metrics", "POST /stop-backup", "POST /start-restore"}

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=st.one_of([op.as_strategy() for op in operations]))
    def check(case: Any) -> None:
        response = case.call()
        assert response.status_code != 500, (case.method, case.path, response.text)

    check()


def test_sigterm_mid_round_finishes_the_step_and_a_restart_converges(tmp_path: Path, daemons: Any) -> None:
    # BARRIER lasts 6 s: the SIGTERM sent on seeing it must land inside it even on a busy
    # machine (with 1 s it sometimes landed in COLLECT: a race with the schedule)
    sites, p_port, s_port = _site_with_ports(tmp_path, grace="6s")
    create_sample_warehouse(sites.primary, rows=30)
    standby = daemons(sites.config, "standby", s_port, tmp_path)
    primary = daemons(sites.config, "primary", p_port, tmp_path)
    wait_for("first set restored", lambda: _caught_up(sites), timeout=60)

    ROUND_WRITES[0](sites.primary, 1)
    ROUND_WRITES[2](sites.primary, 1)
    # a round that started after the writes, seen early in its 6 s BARRIER (not one about to leave it)
    after = local_time(time.time() + 1)

    def in_barrier() -> bool:
        side = primary.get("/progress")["primary cluster"]
        return bool(side["currentStep"] == "BARRIER" and side["actionStartTime"] >= after)

    wait_for("a round in BARRIER", every=0.02, check=in_barrier)
    primary.signal(signal.SIGTERM)
    assert primary.stop() == 0
    assert "stopped before step COLLECT: the drsync daemon is shutting down; state stopped" in primary.log
    state: PrimaryState = load_state(sites.primary_meta, PrimaryState)
    assert state.state == "stopped" and not state.unshipped

    primary.start()  # like systemd's Restart: the next round carries the writes
    written = _key_after_now()
    wait_for("caught up after the restart", lambda: _caught_up(sites, after=written), timeout=60)
    assert primary.stop() == 0 and standby.stop() == 0
    verify = drsync("verify", "-c", str(sites.config))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_suppressed_window_then_sighup_lifts_it(tmp_path: Path, daemons: Any) -> None:
    now = datetime.now()
    window = f"{now - timedelta(minutes=10):%H:%M}-{now + timedelta(minutes=50):%H:%M}"
    sites, p_port, _ = _site_with_ports(tmp_path, f"new-disaster-recovery-suppressed-time-windows={window}")
    create_sample_warehouse(sites.primary, rows=10)
    primary = daemons(sites.config, "primary", p_port, tmp_path)
    wait_for("a decision", lambda: primary.decision())
    assert primary.decision() == f"no round: inside suppressed window {window}"
    assert primary.get("/status")["paused"] == f"inside suppressed window {window}"
    assert not (sites.primary_meta / PrimaryState.FILE).exists()

    sites.config.write_text(sites.config.read_text().replace(
        f"new-disaster-recovery-suppressed-time-windows={window}", ""))
    primary.signal(signal.SIGHUP)
    wait_for("a round", lambda: primary.decision().startswith("round "))
    assert "reloaded: backup every 1s, retention every 1s" in primary.log


def test_backpressure_engages_and_releases(tmp_path: Path, daemons: Any) -> None:
    sites, p_port, _ = _site_with_ports(tmp_path, "local-reserve-file-count=1\ncheck-balance-retry-times=0")
    create_sample_warehouse(sites.primary, rows=10)
    # Random bytes do not shrink: their Parquet goes into a stored bundle of its own, next to
    # the compressed bundle of the rest, so the set has more bundles than the limit of 1.
    write_deltalake(str(sites.primary / "blobs" / "raw" / "random"),
                    pa.table({"blob": [os.urandom(2048) for _ in range(64)]}))
    sites.standby_media.write_text("not a directory: shipping fails")  # the link is down
    primary = daemons(sites.config, "primary", p_port, tmp_path)

    limit = "bundles wait unshipped (local-reserve-file-count=1)"
    paused = wait_for("backpressure", lambda: limit in primary.get("/status")["paused"] and
                      primary.get("/status")["paused"])
    assert int(paused.split()[0]) >= 2
    unhealthy = primary.http.get("/healthz")
    assert unhealthy.status_code == 503 and unhealthy.json()["checks"][0]["name"] == "state"
    first = load_state(sites.primary_meta, PrimaryState).unshipped
    time.sleep(2)
    assert load_state(sites.primary_meta, PrimaryState).unshipped == first and len(first) == 1  # no new set
    assert f"no round: {paused}; shipping them failed" in primary.decision()

    sites.standby_media.unlink()
    sites.standby_media.mkdir()  # the link is back
    wait_for("released", lambda: "backpressure released; round " in primary.log)
    wait_for("healthy", lambda: primary.http.get("/healthz").status_code == 200)
    assert primary.get("/status")["paused"] == ""
    assert (sites.standby_meta / "manifests" / f"{first[0]}.manifest.json").exists()
