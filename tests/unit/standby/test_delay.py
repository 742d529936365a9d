"""restore-delay: a set is applied exactly once its barrier is that old (injected clock), the
progress document says what is held back, RPO counts the delay, and the role commands still
work: switchover applies its final sets at once, failover says what the delay held back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drsync.config import load_settings
from drsync.config.loader import parse_settings_text
from drsync.demo import ROUND_WRITES, TABLES, create_sample_warehouse, table_dir
from drsync.errors import ConfigError
from drsync.primary.round import run_backup
from drsync.roles.status import progress_document
from drsync.sets.manifest import load_manifest
from drsync.site.document import standby_rpo_seconds
from drsync.site.layout import MANIFEST_DIR
from drsync.site.state import StandbyState, load_state
from drsync.standby.delay import split_due
from drsync.standby.restore import run_restore
from tests.helpers import Sites, drsync, duck, latest_version, make_sites, rows

DELAY = timedelta(minutes=30)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _delayed(tmp_path: Path, delay: str = "30m") -> Sites:
    return make_sites(tmp_path / "sites", extra=f"restore-delay={delay}\n")


def test_restore_delay_key_parses_and_defaults_to_zero(tmp_path: Path) -> None:
    base = make_sites(tmp_path / "s").config.read_text()
    assert load_settings(make_sites(tmp_path / "s").config).restore_delay == timedelta(0)
    cases = (("30m", DELAY), ("2h", timedelta(hours=2)), ("0", timedelta(0)), ("45", timedelta(minutes=45)))
    for text, want in cases:
        assert parse_settings_text(base + f"restore-delay={text}\n", "x.ini").restore_delay == want
    with pytest.raises(ConfigError, match="restore-delay"):
        parse_settings_text(base + "restore-delay=-5m\n", "x.ini")


def test_sets_wait_exactly_as_long_as_restore_delay_says(tmp_path: Path) -> None:
    sites = _delayed(tmp_path)
    s = load_settings(sites.config)
    create_sample_warehouse(sites.primary, rows=20)
    first = run_backup(s).key
    ROUND_WRITES[0](sites.primary, 1)
    second = run_backup(s).key
    assert first and second
    b1 = load_manifest(sites.standby_meta / MANIFEST_DIR / f"{first}.manifest.json").barrier_ms
    b2 = load_manifest(sites.standby_meta / MANIFEST_DIR / f"{second}.manifest.json").barrier_ms
    delay_ms = int(DELAY.total_seconds() * 1000)

    # 1 ms before the first set is due: nothing applied, both held back and shown
    r = run_restore(s, now=lambda: _at(b1 + delay_ms - 1))
    assert r.applied == []
    assert "restore-delay=30m holds back 2 set(s)" in r.message
    state: StandbyState = load_state(sites.standby_meta, StandbyState)
    assert state.last_key is None and state.held_back == [first, second]
    doc = progress_document(s).as_json()
    assert doc["restore delay"] == "1800" and doc["held back keys"] == f"{first},{second}"
    assert doc["next apply time"] and doc["primary cluster"]["unrestoreKeys"] == f"{first},{second}"
    assert not table_dir(sites.standby, TABLES[0]).exists()

    # exactly due: the first applies, the second (newer barrier) still waits
    r = run_restore(s, now=lambda: _at(b1 + delay_ms))
    assert r.applied == [first]
    assert load_state(sites.standby_meta, StandbyState).held_back == [second]
    if b2 > b1:
        r = run_restore(s, now=lambda: _at(b2 + delay_ms - 1))
        assert r.applied == []
    r = run_restore(s, now=lambda: _at(b2 + delay_ms))
    assert r.applied == [second] and "holds back" not in r.message
    state = load_state(sites.standby_meta, StandbyState)
    assert state.held_back == [] and state.last_key == second
    doc = progress_document(s).as_json()
    assert doc["held back keys"] == "N/A"
    # RPO is honest: measured from the restored barrier, so at apply time it is the delay
    assert standby_rpo_seconds(state, now=_at(b2 + delay_ms)) == DELAY.total_seconds()
    con = duck()
    for name in TABLES:
        assert rows(con, table_dir(sites.standby, name)) == rows(con, table_dir(sites.primary, name))


def test_split_due_keeps_chain_order_and_millisecond_boundary() -> None:
    class M:
        def __init__(self, key: str, ms: int) -> None:
            self.key, self.barrier_ms = key, ms

    chain = [M("a", 1000), M("b", 5000), M("c", 3000)]  # a later set never jumps an earlier one
    ready, held = split_due(chain, timedelta(seconds=1), _at(5999))  # type: ignore[arg-type]
    assert [m.key for m in ready] == ["a"] and held.keys == ["b", "c"] and held.next_due_ms == 6000
    ready, held = split_due(chain, timedelta(0), _at(0))  # type: ignore[arg-type]
    assert ready == chain and held.keys == []  # no delay: due whatever this host's clock says


def test_no_delay_document_is_unchanged(sites: Sites) -> None:
    s = load_settings(sites.config)
    create_sample_warehouse(sites.primary, rows=10)
    run_backup(s)
    run_restore(s)
    doc = progress_document(s).as_json()
    assert "restore delay" not in doc and "held back keys" not in doc


def test_failover_with_a_delay_says_what_it_can_still_apply(tmp_path: Path) -> None:
    sites = _delayed(tmp_path, "1h")
    cfg = str(sites.config)
    create_sample_warehouse(sites.primary, rows=20)
    drsync("backup", "-c", cfg, check=True)
    held = drsync("restore", "-c", cfg, check=True)
    assert "holds back 1 set(s)" in held.stdout
    drsync("restore", "--no-delay", "-c", cfg, check=True)
    ROUND_WRITES[0](sites.primary, 1)
    drsync("backup", "-c", cfg, check=True)
    drsync("restore", "-c", cfg, check=True)  # held back by the delay
    p = drsync("failover", "--yes", "-c", cfg)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "the inbox holds 1 set(s) not yet applied" in p.stdout
    assert "drsync restore --no-delay" in p.stdout
    assert "failover done" in p.stdout


def test_switchover_applies_its_final_sets_whatever_the_delay(tmp_path: Path) -> None:
    sites = _delayed(tmp_path, "1h")
    cfg = str(sites.config)
    create_sample_warehouse(sites.primary, rows=20)
    drsync("backup", "-c", cfg, check=True)
    drsync("restore", "--no-delay", "-c", cfg, check=True)
    ROUND_WRITES[0](sites.primary, 1)
    p = drsync("switchover", "--timeout", "60", "-c", cfg)
    assert p.returncode == 0, p.stdout + p.stderr
    for name in TABLES:  # the standby (now primary) holds every version the old primary had
        p_dir, s_dir = table_dir(sites.primary, name), table_dir(sites.standby, name)
        assert latest_version(s_dir) == latest_version(p_dir)


def test_daemon_restores_a_held_set_once_due_without_waiting_for_restore_interval(tmp_path: Path) -> None:
    """restore-interval is 1 minute, restore-delay 4 s: the daemon applies the set once its
    barrier is 4 s old (not before), well before the next scheduled pass."""
    import time as clock

    from drsync.daemon.main import Daemon
    from drsync.site.state import read_history

    sites = _delayed(tmp_path, "4s")
    create_sample_warehouse(sites.primary, rows=5)
    s = load_settings(sites.config)
    assert s.restore_interval == timedelta(minutes=1)
    daemon = Daemon(s, "standby")
    daemon.start_scheduler()
    try:
        deadline = clock.monotonic() + 10
        while daemon.jobs["restore"].last_decision == "" and clock.monotonic() < deadline:
            clock.sleep(0.1)  # the pass at start has run
        key = run_backup(s).key
        assert key is not None
        barrier_ms = load_manifest(sites.standby_meta / MANIFEST_DIR / f"{key}.manifest.json").barrier_ms
        deadline = clock.monotonic() + 40
        while load_state(sites.standby_meta, StandbyState).last_key != key and clock.monotonic() < deadline:
            clock.sleep(0.2)
        decided = daemon.jobs["restore"].last_decision
        assert load_state(sites.standby_meta, StandbyState).last_key == key, decided
    finally:
        daemon.stopping.set()
        daemon.scheduler.shutdown(wait=True)
    history = read_history(sites.standby_meta / s.backuprestoreinfo_file)
    row = next(r for r in history if r["action"] == "restore")
    started = datetime.strptime(row["startTime"], "%Y-%m-%d %H:%M:%S").astimezone(UTC).timestamp()
    assert started >= barrier_ms / 1000 + 4 - 1  # startTime has whole seconds
