"""Writers, OPTIMIZE and VACUUM on the primary while backup rounds run.

* Continuous: a writer thread appends, merges, compacts, checkpoints and vacuums (retention 0)
  while backup rounds run back to back; after each round the standby restores, and every table
  must be readable (DuckDB) at its version with the rows the primary had at that version.
* Deterministic: the round is paused right after COLLECT (the `backup.collected` point) and a
  real OPTIMIZE + VACUUM runs there, so files the round collected vanish before they are packed.

Either the set carries a consistent version of each table, or the table waits for a later
round; a set that cannot be applied is never shipped. The rows the primary had at version v are
captured right after each write (VACUUM makes old versions unreadable on the primary).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable, write_deltalake

import drsync.primary.round as primary_module
from drsync.config import load_settings
from drsync.demo import ROUND_WRITES, TABLES, _orders, _rows, create_sample_warehouse, table_dir
from drsync.primary.round import run_backup
from tests.faults.conftest import Reliability, Trials, soak
from tests.helpers import Sites, VersionRows, capture_versions, drsync, duck, latest_version, rows

Expected = VersionRows
WRITTEN = ["sales.public.orders", "iot.raw.readings", "sales.public.customers"]




def _standby_matches(con: Any, sites: Sites, expected: Expected, what: str) -> None:
    for name in TABLES:
        s = table_dir(sites.standby, name)
        v = latest_version(s)
        try:
            got = rows(con, s)
        except Exception as e:
            raise AssertionError(f"{what}: standby {name} unreadable at version {v}: {e}") from None
        assert v in expected[name], f"{what}: {name} at version {v}, never seen on the primary"
        assert got == expected[name][v], f"{what}: {name} at version {v} differs from the primary's"


def _writer(wh: Path, stop: threading.Event, expected: Expected, lock: threading.Lock,
            errors: list[BaseException]) -> None:
    con = duck()
    i = 0
    try:
        while not stop.is_set():
            i += 1
            orders, readings = table_dir(wh, "sales.public.orders"), table_dir(wh, "iot.raw.readings")
            step = i % 5
            if step in (1, 3):
                write_deltalake(str(orders), _orders(100_000 + 100 * i, 20), mode="append")
                write_deltalake(str(readings), _rows(100_000 + 100 * i, 20), mode="append")
            elif step == 2:
                ROUND_WRITES[3](wh, i)  # merge into customers
            else:
                for t in (orders, readings):
                    dt = DeltaTable(str(t))
                    dt.optimize.compact()
                    with lock:
                        capture_versions(con, wh, WRITTEN, expected)
                    if step == 4:
                        dt.create_checkpoint()
                    dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
            with lock:
                capture_versions(con, wh, WRITTEN, expected)
            time.sleep(0.05)
    except BaseException as e:
        errors.append(e)


ROUNDS = soak(4, 20)


def test_writers_optimize_vacuum_during_rounds(sites: Sites, reliability: Reliability) -> None:
    rel = reliability("concurrent writers, OPTIMIZE, VACUUM", "a writer thread appending, merging, "
                      "compacting, checkpointing and vacuuming (retention 0) while backup rounds "
                      "run; restore and check after each round")
    create_sample_warehouse(sites.primary, rows=40)
    con = duck()
    expected: Expected = {}
    capture_versions(con, sites.primary, TABLES, expected)
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []
    t = threading.Thread(target=_writer, args=(sites.primary, stop, expected, lock, errors), daemon=True)
    t.start()
    try:
        for r in range(ROUNDS):
            with rel.trial():
                p = drsync("backup", "-c", str(sites.config))
                assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
                assert p.returncode in (0, 3), p.stderr  # 3: a table left for the next round
                q = drsync("restore", "-c", str(sites.config))
                assert q.returncode in (0, 3), q.stdout + q.stderr
                with lock:
                    _standby_matches(con, sites, expected, f"round {r + 1}")
    finally:
        stop.set()
        t.join(60)
    assert not errors, errors
    with rel.trial():  # quiet again: one round converges on the primary as it is
        drsync("backup", "-c", str(sites.config), check=True)
        drsync("restore", "-c", str(sites.config), check=True)
        for name in TABLES:
            assert rows(con, table_dir(sites.standby, name)) == rows(con, table_dir(sites.primary, name))


def _round_with_vacuum_after_collect(sites: Sites, monkeypatch: pytest.MonkeyPatch, rel: Trials,
                                     write: str, caplog: pytest.LogCaptureFixture,
                                     at: str = "backup.collected") -> None:
    con = duck()
    expected: Expected = {}
    create_sample_warehouse(sites.primary, rows=40)
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    capture_versions(con, sites.primary, TABLES, expected)
    orders = table_dir(sites.primary, "sales.public.orders")
    write_deltalake(str(orders), _orders(50_000, 30), mode="append" if write == "append" else "overwrite")
    capture_versions(con, sites.primary, TABLES, expected)
    real, real_clock = primary_module.crash_point, primary_module.wall_clock

    def optimize_vacuum() -> None:
        time.sleep(0.01)  # the compaction's commit lands after the barrier
        for n in ("sales.public.orders", "iot.raw.readings"):
            dt = DeltaTable(str(table_dir(sites.primary, n)))
            dt.optimize.compact()
            capture_versions(con, sites.primary, TABLES, expected)
            dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)

    def vacuum_now(name: str) -> None:
        real(name)
        if name == at:
            optimize_vacuum()

    def vacuum_after_barrier() -> Any:
        now = real_clock()
        if at == "barrier":
            optimize_vacuum()
        return now

    with rel.trial():
        monkeypatch.setattr(primary_module, "crash_point", vacuum_now)
        monkeypatch.setattr(primary_module, "wall_clock", vacuum_after_barrier)
        result = run_backup(load_settings(sites.config))
        monkeypatch.setattr(primary_module, "crash_point", real)
        monkeypatch.setattr(primary_module, "wall_clock", real_clock)
        assert result.key is not None
        # After an append, the compaction tombstones the appended files and VACUUM deletes them:
        # the collected version needs them, so the set is cut again (regression: it was shipped
        # and the standby's table was unreadable at that version). After an overwrite, VACUUM
        # deletes only files the overwrite itself removed: nothing to cut again for.
        assert ("cutting the set again" in caplog.text) == (write == "append"), caplog.text
        q = drsync("restore", "-c", str(sites.config))
        assert q.returncode in (0, 3) and "Traceback" not in q.stderr, q.stdout + q.stderr
        _standby_matches(con, sites, expected, "after the round whose files were vacuumed")
        drsync("backup", "-c", str(sites.config), check=True)
        drsync("restore", "-c", str(sites.config), check=True)
        for name in TABLES:
            assert rows(con, table_dir(sites.standby, name)) == rows(con, table_dir(sites.primary, name))


@pytest.mark.parametrize("write", ["append", "overwrite"])
def test_vacuum_between_collect_and_ship(sites: Sites, monkeypatch: pytest.MonkeyPatch, write: str,
                                         reliability: Reliability, caplog: pytest.LogCaptureFixture) -> None:
    rel = reliability("VACUUM between collect and ship", "OPTIMIZE + VACUUM (retention 0) run at the "
                      "`backup.collected` point of a round, after an append or an overwrite; or "
                      "right after the barrier is cut")
    _round_with_vacuum_after_collect(sites, monkeypatch, rel, write, caplog)


def test_vacuum_between_barrier_and_collect(sites: Sites, monkeypatch: pytest.MonkeyPatch,
                                            reliability: Reliability,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """Regression (found by the continuous test): OPTIMIZE + VACUUM right after the barrier is
    cut delete files the barrier version needs before COLLECT looks at them; that version was
    shipped "mirrored as it is" and the standby's table was unreadable at it."""
    rel = reliability("VACUUM between collect and ship", "OPTIMIZE + VACUUM (retention 0) run at the "
                      "`backup.collected` point of a round, after an append or an overwrite; or "
                      "right after the barrier is cut")
    _round_with_vacuum_after_collect(sites, monkeypatch, rel, "append", caplog, at="barrier")
