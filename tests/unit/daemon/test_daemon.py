"""The daemon's decisions (drsync.daemon.passes), role detection, reload, logging, --watch.

Runners are fakes where the test is about a decision, and the real run_backup / run_restore
on two local sites where it is about what ends up on disk.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from drsync.api.app import ApiServer, DaemonStatus
from drsync.api.metrics import DrsyncMetrics
from drsync.cli.watch import watch_progress
from drsync.config import Settings, load_settings
from drsync.daemon.main import Daemon
from drsync.daemon.passes import Passes, bundles_waiting
from drsync.demo import ROUND_WRITES, TABLES, create_sample_warehouse
from drsync.errors import ConfigError, HostKeyError, LockBusyError, TransportError
from drsync.logsetup import redact, setup_logging
from drsync.primary.round import RoundResult, run_backup
from drsync.sets.manifest import load_manifest
from drsync.site.host_role import detect_role
from drsync.site.layout import MANIFEST_DIR
from drsync.site.state import PrimaryState, StandbyState, load_state, request_stop, save_state
from drsync.standby.restore import run_restore
from drsync.standby.verify import verify_tables
from tests.helpers import Sites, make_sites

NOON = datetime(2026, 11, 23, 12, 0)


def _settings(sites: Sites) -> Settings:
    return load_settings(sites.config)


class FakeBackup:
    """run_backup stand-in: raises the queued errors first, then returns a round."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, settings: Settings, ui: Any = None, transport: Any = None,
                 memory: Any = None) -> RoundResult:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return RoundResult("20261123_120000", "set", tables_changed=3, bytes_shipped=41_000_000)


def _passes(settings: Settings, clock: datetime = NOON, **runners: Any) -> Passes:
    return Passes(settings, "primary", every_s=0.05, stopping=threading.Event(), metrics=DrsyncMetrics(),
                  clock=lambda: clock, **runners)


# ---------------------------------------------------------------- role


def test_role_comes_from_the_state_file_and_role_only_asserts_it(tmp_path: Path) -> None:
    sites = make_sites(tmp_path)
    # transport=ssh: each host has its own side's state (the ssh keys are never used here)
    text = sites.config.read_text().replace("transport=local", "transport=ssh")
    ssh = f"primary-host-ip=10.0.0.1\nrestore-host-ip=10.0.0.2\nusername=drsync\n" \
          f"ssh-key-file={tmp_path}/id\nknown-hosts-file={tmp_path}/known_hosts\n"
    sites.config.write_text(text + ssh)
    s = _settings(sites)
    with pytest.raises(ConfigError, match="cannot tell which side") as e:
        detect_role(s, None)
    assert e.value.hint == "pass --role primary or --role standby"
    assert detect_role(s, "standby") == "standby"
    save_state(sites.primary_meta, PrimaryState())
    assert detect_role(s, None) == "primary"
    with pytest.raises(ConfigError, match="contradicts"):
        detect_role(s, "standby")
    save_state(sites.standby_meta, StandbyState())
    with pytest.raises(ConfigError, match="both state files"):
        detect_role(s, None)
    with pytest.raises(ConfigError, match="allowed"):
        detect_role(s, "leader")


def test_with_transport_local_role_chooses_the_side(sites: Sites) -> None:
    s = _settings(sites)
    save_state(sites.standby_meta, StandbyState())  # the standby daemon ran first
    assert detect_role(s, "primary") == "primary"
    with pytest.raises(ConfigError, match="transport=local keeps both sites"):
        detect_role(s, None)


# ---------------------------------------------------------------- decisions


@pytest.mark.parametrize(("windows", "clock", "suppressed"), [
    ("01:00-03:00", datetime(2026, 1, 1, 2, 30), "01:00-03:00"),
    ("01:00-03:00", datetime(2026, 1, 1, 3, 0), None),  # the end is exclusive
    ("04:00-05:00,22:00-02:00", datetime(2026, 1, 1, 23, 30), "22:00-02:00"),  # crosses midnight
    ("04:00-05:00,22:00-02:00", datetime(2026, 1, 1, 1, 59), "22:00-02:00"),
])
def test_no_round_inside_a_suppressed_window(tmp_path: Path, windows: str, clock: datetime,
                                             suppressed: str | None) -> None:
    s = _settings(make_sites(tmp_path, f"new-disaster-recovery-suppressed-time-windows={windows}"))
    backup = FakeBackup()
    passes = _passes(s, clock, backup=backup)
    line, _ = passes.backup()
    if suppressed:
        assert line == f"no round: inside suppressed window {suppressed}"
        assert backup.calls == 0 and passes.paused == f"inside suppressed window {suppressed}"
    else:
        assert line.startswith("round 20261123_120000: 3 tables changed, 41.0 MB shipped in ")
        assert backup.calls == 1 and passes.paused == ""


def test_stop_intent_is_honoured_and_recorded(sites: Sites) -> None:
    s = _settings(sites)
    request_stop(sites.primary_meta, "backup")
    line, _ = _passes(s).backup()
    assert line == "no round: backup is stopped by stop-backup; run start-backup to resume"
    state: PrimaryState = load_state(sites.primary_meta, PrimaryState)
    assert state.state == "stopped" and state.last_key is None


def _fake_unshipped(sites: Sites, keys: dict[str, int]) -> None:
    save_state(sites.primary_meta, PrimaryState(unshipped=list(keys)))
    for key, n in keys.items():
        (sites.primary_media / key).mkdir(parents=True)
        for i in range(n):
            (sites.primary_media / key / f"{key}_{i:04d}.tar.zst").write_bytes(b"x")


def test_backpressure_ships_without_cutting_then_releases(tmp_path: Path) -> None:
    sites = make_sites(tmp_path, "local-reserve-file-count=10")
    s = _settings(sites)
    _fake_unshipped(sites, {"20261123_100000": 7, "20261123_100100": 5})
    assert bundles_waiting(s) == 12
    backup, shipped = FakeBackup(), []

    def ship(settings: Settings, ui: Any = None, transport: Any = None) -> int:
        shipped.append(1)
        if len(shipped) == 2:
            save_state(sites.primary_meta, PrimaryState())  # the link came back: all shipped
        return 2

    passes = _passes(s, backup=backup, ship=ship)
    for _ in range(2):
        line, _ = passes.backup()
        assert line == ("no round: 12 bundles wait unshipped (local-reserve-file-count=10); "
                        "shipped 2 waiting set(s)")
        assert passes.paused.startswith("12 bundles wait unshipped")
    assert backup.calls == 0
    line, _ = passes.backup()
    assert line.startswith("backpressure released; round 20261123_120000")
    assert backup.calls == 1 and passes.paused == ""


def test_transient_failures_are_retried_then_abnormal(sites: Sites) -> None:
    s = _settings(sites)  # check-balance-retry-times defaults to 3
    flaky = FakeBackup(TransportError("connection lost"), TransportError("connection lost"))
    line, level = _passes(s, backup=flaky).backup()
    assert flaky.calls == 3 and line.startswith("round ") and level == logging.INFO

    down = FakeBackup(*[TransportError("standby unreachable")] * 4)
    line, level = _passes(s, backup=down).backup()
    assert down.calls == 4 and level == logging.ERROR
    assert line == ("round failed: standby unreachable (DRS400); backup state abnormal, "
                    "next attempt in 0.05s")

    hinted = FakeBackup(*[TransportError("standby unreachable", hint="check the link")] * 4)
    line, _ = _passes(s, backup=hinted).backup()
    assert line.endswith("next attempt in 0.05s; hint: check the link")  # the dashboard's last errors


@pytest.mark.parametrize("error", [HostKeyError("host key changed"), LockBusyError("held by pid 7")])
def test_permanent_failures_are_not_retried(sites: Sites, error: Exception) -> None:
    backup = FakeBackup(error)
    line, _ = _passes(_settings(sites), backup=backup).backup()
    assert backup.calls == 1
    busy = isinstance(error, LockBusyError)
    expected = "no round: held by pid 7" if busy else "(DRS410); backup state abnormal"
    assert expected in line


def test_sigterm_lets_the_step_finish_and_leaves_nothing_half_done(sites: Sites) -> None:
    """SIGTERM during BARRIER: the round ends before COLLECT, the state says `stopped`, and
    the next pass (after a restart) makes a complete set the standby applies and verifies."""
    create_sample_warehouse(sites.primary, rows=20)
    s = _settings(sites)
    stopping = threading.Event()
    steps: list[str] = []

    def backup_hit_by_sigterm(settings: Settings, ui: Any = None, transport: Any = None,
                              memory: Any = None) -> RoundResult:
        def step_seen(step: str, done: int, total: int) -> None:
            steps.append(step)
            ui(step, done, total)
            stopping.set()  # SIGTERM arrives while this step runs

        return run_backup(settings, step_seen, transport)

    passes = Passes(s, "primary", every_s=1, stopping=stopping, metrics=DrsyncMetrics(),
                    backup=backup_hit_by_sigterm)
    line, _ = passes.backup()
    assert line == ("round failed: stopped before step COLLECT: the drsync daemon is shutting down; "
                    "state stopped")
    assert steps[:2] == ["BARRIER", "COLLECT"]
    state: PrimaryState = load_state(sites.primary_meta, PrimaryState)
    assert (state.state, state.last_key, state.progress.failedStep) == ("stopped", None, "COLLECT")

    line, _ = _passes(s).backup()  # the daemon started again
    assert line.startswith("round ") and "10 tables changed" in line
    run_restore(s)
    assert all(v.ok for v in verify_tables(s, None, False))


def test_a_bug_in_a_pass_is_one_line_and_the_loop_goes_on(sites: Sites) -> None:
    daemon = Daemon(_settings(sites), "primary", backup=FakeBackup(RuntimeError("boom")))
    assert daemon.run_pass("backup") == "backup pass failed with an internal error: RuntimeError: boom"
    assert daemon.run_pass("backup").startswith("round 20261123_120000")
    status = DaemonStatus.model_validate(daemon.status())
    assert status.jobs["backup"].last_decision.startswith("round ") and not status.loop_running


def test_tick_replaces_every_interval(sites: Sites) -> None:
    assert Daemon(_settings(sites), "standby").schedule_text() == "restore every 60s, retention every 3600s"
    fast = Daemon(_settings(sites), "primary", tick=0.5)
    assert fast.schedule_text() == "backup every 0.5s, retention every 0.5s"


def test_sighup_reload_keeps_the_old_config_when_the_new_one_is_bad(sites: Sites,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    daemon = Daemon(_settings(sites), "primary")
    good = sites.config.read_text()
    sites.config.write_text(good + "backup-exec-time-interval=5s\n")  # below the 10s minimum
    daemon.reload()
    assert "not reloaded, keeping the previous one" in caplog.text
    assert "backup-exec-time-interval: 5s is out of range" in daemon.reload_note
    assert daemon.settings.backup_exec_time_interval.total_seconds() == 60

    sites.config.write_text(good + "backup-exec-time-interval=30s\n")
    daemon.reload()
    assert daemon.settings.backup_exec_time_interval.total_seconds() == 30
    assert daemon.status()["jobs"]["backup"]["every_seconds"] == 30 and daemon.passes.every_s == 30
    assert "reloaded: backup every 30s" in caplog.text


def test_full_set_every_full_backup_interval_copies_every_table_again(tmp_path: Path) -> None:
    sites = make_sites(tmp_path / "sites", extra="full-backup-exec-time-interval=1h")
    create_sample_warehouse(sites.primary, rows=5)
    s = _settings(sites)
    start = datetime(2026, 11, 23, 9, 0)

    def backup_at(at: datetime) -> str:
        line, _ = _passes(s, clock=at).backup()
        run_restore(s)
        return line

    first = backup_at(start)  # the first set is full anyway; the interval counts from it
    assert first.startswith("round ") and "full set" not in first
    ROUND_WRITES[0](sites.primary, 1)
    assert "full set" not in backup_at(start + timedelta(minutes=59))
    last = load_state(sites.primary_meta, PrimaryState).last_key
    due = backup_at(start + timedelta(minutes=61))
    assert due.startswith("full set (every 1:00:00): every table copied again; round ")
    key = load_state(sites.primary_meta, PrimaryState).last_key
    assert key is not None and key != last
    manifest = load_manifest(sites.primary_meta / MANIFEST_DIR / f"{key}.manifest.json")
    assert {t.name for t in manifest.tables} == set(TABLES)
    assert all(t.mode == "full" and t.replace for t in manifest.tables)
    assert all(v.ok for v in verify_tables(s, None, True))
    # the next one is an hour after that request, not after the first set
    assert "full set" not in backup_at(start + timedelta(minutes=62))
    assert backup_at(start + timedelta(minutes=122)).startswith("full set")


def test_standby_restores_a_delivered_set_without_waiting_for_restore_interval(sites: Sites) -> None:
    """restore-interval is 1 minute; a set shipped after the first pass is restored within a
    few seconds because the daemon watches its inbox (the RPO fix measured by bench/rpo.py)."""
    create_sample_warehouse(sites.primary, rows=5)
    s = _settings(sites)
    assert s.restore_interval.total_seconds() == 60
    daemon = Daemon(s, "standby")
    daemon.start_scheduler()
    try:
        assert _wait(lambda: daemon.jobs["restore"].last_decision != "")  # the pass at start
        assert load_state(sites.standby_meta, StandbyState).last_key is None
        key = run_backup(s).key
        assert key is not None
        assert _wait(lambda: load_state(sites.standby_meta, StandbyState).last_key == key, timeout=15)
        assert all(v.ok for v in verify_tables(s, None, False))
    finally:
        daemon.stopping.set()
        daemon.scheduler.shutdown(wait=True)


def test_sighup_moves_the_api_to_a_new_port_unless_that_port_is_busy(sites: Sites) -> None:
    def free_socket() -> socket.socket:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        return sock

    def answers(port: int) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/status", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    first, busy, second = free_socket(), free_socket(), free_socket()
    ports = [int(s.getsockname()[1]) for s in (first, busy, second)]
    first.close()
    second.close()
    busy.listen()  # held by someone else for the whole test
    good = sites.config.read_text()
    sites.config.write_text(good + f"backup-port={ports[0]}\n")
    daemon = Daemon(_settings(sites), "primary")
    daemon.api = ApiServer(daemon, "127.0.0.1", ports[0])
    daemon.api.start()
    daemon.serving = True
    try:
        assert _wait(lambda: answers(ports[0]))
        sites.config.write_text(good + f"backup-port={ports[1]}\n")
        daemon.reload()
        assert "API not moved" in daemon.reload_note and f":{ports[1]}" in daemon.reload_note
        assert answers(ports[0]), "a busy new port must leave the API where it was"

        sites.config.write_text(good + f"backup-port={ports[2]}\n")
        daemon.reload()
        assert f"HTTP API now on http://127.0.0.1:{ports[2]}" in daemon.reload_note
        assert _wait(lambda: answers(ports[2])) and not answers(ports[0])

        sites.config.write_text(good)  # no port: the API is switched off
        daemon.reload()
        assert "HTTP API off" in daemon.reload_note and daemon.api is None
        assert not answers(ports[2])
    finally:
        busy.close()
        if daemon.api is not None:
            daemon.api.stop()


def _wait(check: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------- logging, watch


def test_logs_rotate_in_the_metadata_dir_and_hide_tokens(tmp_path: Path) -> None:
    sites = make_sites(tmp_path, "log-file-count=5\nprimary-cluster-logging-level=WARNING")
    s = _settings(sites)
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        path = setup_logging(s, "primary")
        assert path == sites.primary_meta / "logs" / "drsync.log"
        assert root.level == logging.WARNING
        setup_logging(s, "primary")  # again (SIGHUP): handlers replaced, not added
        ours = [h for h in root.handlers if h not in before[0]]
        assert len(ours) == 2 and any(getattr(h, "backupCount", 0) == 5 for h in ours)
        logging.getLogger("drsync.test").warning("sent header Authorization: Bearer abc.def")
        for h in ours:
            h.flush()
        assert "Bearer ***" in path.read_text() and "abc.def" not in path.read_text()
    finally:
        for h in [h for h in root.handlers if h not in before[0]]:
            root.removeHandler(h)
            h.close()
        root.setLevel(before[1])
    assert redact("token=xyz, other") == "token=***, other"
    assert redact("Authorization: Bearer abc") == "Authorization: Bearer ***"
    assert redact('{"authorization": "Basic eHk="}') == '{"authorization": "Basic ***"}'
    assert redact("authorization=abc") == "authorization=***"


def test_watch_progress_draws_both_sides(sites: Sites) -> None:
    console = Console(record=True, width=120)
    assert watch_progress(_settings(sites), 0.01, console=console, refreshes=2) == 0
    text = console.export_text()
    assert "drsync progress" in text and "unrestored keys: N/A" in text and "consumerRate" in text


def test_watch_ends_on_ctrl_c_with_0(sites: Sites, monkeypatch: pytest.MonkeyPatch) -> None:
    def ctrl_c(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("drsync.cli.watch.time.sleep", ctrl_c)
    console = Console(record=True, width=120)
    assert watch_progress(_settings(sites), 5, console=console) == 0
    assert "every 5 s, Ctrl-C to stop" in console.export_text()
