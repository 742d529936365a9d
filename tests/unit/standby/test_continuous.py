"""Continuous verification and self-healing (standby/continuous.py), on real tables replicated
in-process (transport=local): damage is found, named and repaired from the primary; a file the
primary lost keeps its table flagged; concurrent restores never raise a false alarm."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

from drsync.api.dashboard import render_page
from drsync.config import load_settings
from drsync.demo import ROUND_WRITES, create_sample_warehouse, table_dir
from drsync.fsutil import RO_FILE
from drsync.primary.round import run_backup
from drsync.roles.status import progress_document
from drsync.sets.bundle import file_hash
from drsync.site.state import StandbyState, VerifyState, load_state, local_time
from drsync.standby.continuous import Verifier
from drsync.standby.filehashes import recorded_hashes
from drsync.standby.restore import run_restore
from tests.helpers import Sites, duck, make_sites, rows

TABLE = "iot.raw.readings"  # appended to by ROUND_WRITES[0]: several data files


def _replicated(tmp_path: Path, rounds: int = 2) -> Sites:
    sites = make_sites(tmp_path / "sites", extra="verify-interval=10s\n")
    s = load_settings(sites.config)
    create_sample_warehouse(sites.primary, rows=50)
    run_backup(s)
    run_restore(s)
    for r in range(1, rounds):
        ROUND_WRITES[0](sites.primary, r)  # appends: more data files per table
        run_backup(s)
        run_restore(s)
    return sites


def _cycle(sites: Sites) -> tuple[list[str], VerifyState]:
    """One full verification cycle, step by step (as the daemon runs it)."""
    verifier = Verifier(load_settings(sites.config), tick_s=1.0)
    names = set(load_state(sites.standby_meta, StandbyState).tables)
    lines: list[str] = []
    try:
        for _ in range(100):
            lines += verifier.tick()
            state: VerifyState = load_state(sites.standby_meta, VerifyState)
            if set(state.tables) == names and verifier.current is None and not verifier.queue:
                return lines, state
    finally:
        verifier.close()
    raise AssertionError(f"no complete cycle: {lines}")


def _parquet(sites: Sites) -> list[str]:
    tdir = table_dir(sites.standby, TABLE)
    return sorted(p.name for p in tdir.glob("*.parquet"))  # data files (not checkpoints)


def test_a_flipped_byte_and_a_deleted_file_are_named_repaired_and_read_equal(tmp_path: Path) -> None:
    sites = _replicated(tmp_path)
    standby, primary = table_dir(sites.standby, TABLE), table_dir(sites.primary, TABLE)
    flipped, deleted = _parquet(sites)[:2]
    good = file_hash(standby / flipped)
    with open(standby / flipped, "r+b") as f:  # bit rot: same size, one byte changed
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    (standby / deleted).unlink()  # an operator's mistake

    lines, state = _cycle(sites)
    text = "\n".join(lines)
    assert f"file {flipped} is damaged" in text, text
    assert f"file {deleted} is missing" in text, text
    assert f"{TABLE}: {flipped}: repaired from the primary" in text, text
    assert f"{TABLE}: {deleted}: repaired from the primary" in text, text
    assert file_hash(standby / flipped) == good
    for rel in (flipped, deleted):
        st = os.stat(standby / rel)
        assert stat.S_IMODE(st.st_mode) == RO_FILE
        assert st.st_mtime_ns == recorded_hashes(sites.standby_meta, "iot/raw/readings", 0)[rel][2]
    assert not [p for p in standby.rglob("*") if p.name.startswith(".drsync-heal-")]
    con = duck()
    assert rows(con, standby) == rows(con, primary)

    standby_state: StandbyState = load_state(sites.standby_meta, StandbyState)
    assert state.tables[TABLE].problems == []
    assert state.tables[TABLE].verified_barrier_ms == standby_state.tables[TABLE].barrier_ms
    assert state.verified_barrier_ms == min(t.barrier_ms for t in standby_state.tables.values())
    assert any(f"{flipped}: repaired" in r for r in state.recent)
    shown = progress_document(load_settings(sites.config)).verification
    assert shown.verifiedBarrierTime == local_time(state.verified_barrier_ms / 1000)
    assert shown.verifiedTables == shown.tables == len(standby_state.tables) and not shown.flagged
    page = render_page(progress_document(load_settings(sites.config)), standby_state, role="standby",
                       samples=[], history=[], errors=[], target_s=None)
    assert f"<b data-field='verified-barrier'>{shown.verifiedBarrierTime}</b>" in page

    again, state = _cycle(sites)  # now clean: nothing found
    assert again == [] and all(not t.problems for t in state.tables.values())


def test_a_file_the_primary_lost_or_changed_keeps_the_table_flagged(tmp_path: Path) -> None:
    sites = _replicated(tmp_path, rounds=2)
    lost, changed = _parquet(sites)[:2]
    standby, primary = table_dir(sites.standby, TABLE), table_dir(sites.primary, TABLE)
    (standby / lost).unlink()
    (primary / lost).unlink()
    (standby / changed).unlink()
    (primary / changed).write_bytes(b"not what was shipped")
    damaged_copy = (primary / changed).read_bytes()

    lines, state = _cycle(sites)
    assert any(f"{lost}" in line and "stays flagged" in line for line in lines), lines
    problems = state.tables[TABLE].problems
    assert any("the primary no longer has it" in p and lost in p for p in problems), problems
    assert any("the primary's copy differs from the recorded hash" in p and changed in p for p in problems)
    assert not (standby / changed).exists()  # a copy that fails its hash is never put in place
    assert (primary / changed).read_bytes() == damaged_copy  # the primary is only read
    assert state.tables[TABLE].verified_barrier_ms is None  # never verified clean
    assert state.verified_barrier_ms is None  # so the site is not "verified restorable"
    others = [t for n, t in state.tables.items() if n != TABLE]
    assert others and all(t.verified_barrier_ms is not None for t in others)

    # show-progress and the page say so
    settings = load_settings(sites.config)
    doc = progress_document(settings)
    shown = doc.as_json()["verification"]
    assert shown["verifiedBarrierTime"] == "" and shown["intervalSeconds"] == 10
    assert shown["tables"] == len(state.tables) and shown["verifiedTables"] == len(others)
    assert lost in shown["flagged"][TABLE][0]
    page = render_page(doc, load_state(sites.standby_meta, StandbyState), role="standby", samples=[],
                       history=[], errors=[], target_s=None)
    assert "id='verification'" in page and f"data-table='{TABLE}'" in page and lost in page


def test_no_false_alarm_while_restores_run_concurrently(tmp_path: Path) -> None:
    sites = _replicated(tmp_path, rounds=1)
    s = load_settings(sites.config)
    verifier = Verifier(s, tick_s=1.0)
    verifier.min_step_bytes = 1  # one file per step: each table's check spans restores
    found: list[str] = []
    done = threading.Event()
    cycles = 0

    def verify_continuously() -> None:
        nonlocal cycles
        while not done.is_set():
            found.extend(verifier.tick())
            time.sleep(0.005)  # steps spaced out, as the daemon's are
            if verifier.current is None and not verifier.queue:
                verifier.cycle_started = None  # start the next cycle at once (no 10 s wait)
                cycles += 1

    worker = threading.Thread(target=verify_continuously)
    worker.start()
    try:
        # every kind of write, and vacuum again and again (files deleted on the standby)
        for r, write in enumerate([*ROUND_WRITES, ROUND_WRITES[0], ROUND_WRITES[-1]] * 1, start=1):
            write(sites.primary, r)
            run_backup(s)
            assert run_restore(s).exit_code == 0
    finally:
        done.set()
        worker.join()
        verifier.close()
    assert cycles >= 2
    assert found == [], found
    lines, state = _cycle(sites)
    assert lines == [] and all(not t.problems for t in state.tables.values())


def test_a_check_that_a_restore_overtakes_is_redone_not_reported(tmp_path: Path) -> None:
    """Deterministic form of the race: a table's check is half done when a restore applies a
    compaction + vacuum to it (deleting files the checked version needed)."""
    sites = _replicated(tmp_path)
    s = load_settings(sites.config)
    verifier = Verifier(s, tick_s=1.0)
    verifier.min_step_bytes = 1  # one file per step
    verifier.queue, verifier.cycle_started = [TABLE], time.monotonic()
    try:
        assert verifier.tick() == []
        check = verifier.current
        assert check is not None and check.name == TABLE and check.pending
        before = check.version
        ROUND_WRITES[-1](sites.primary, 9)  # optimize + checkpoint + vacuum this table
        run_backup(s)
        assert run_restore(s).exit_code == 0
        lines: list[str] = []
        for _ in range(200):
            lines += verifier.tick()
            if verifier.current is None and not verifier.queue:
                break
    finally:
        verifier.close()
    assert lines == [], lines
    state: VerifyState = load_state(sites.standby_meta, VerifyState)
    now = load_state(sites.standby_meta, StandbyState).tables[TABLE]
    assert now.version > before
    assert state.tables[TABLE].version == now.version and not state.tables[TABLE].problems
    assert state.tables[TABLE].verified_barrier_ms == now.barrier_ms


def test_a_damaged_checkpoint_is_repaired_before_the_data_files_it_names(tmp_path: Path) -> None:
    """A checkpoint names the data files of its version: damaged, it names wrong ones. The log
    is repaired first, then the table is checked again (no phantom data file reported)."""
    sites = _replicated(tmp_path, rounds=4)  # iot.raw.readings checkpoints every 3 commits
    standby, primary = table_dir(sites.standby, TABLE), table_dir(sites.primary, TABLE)
    (checkpoint,) = [str(p.relative_to(standby)) for p in standby.glob("_delta_log/*.checkpoint.parquet")]
    data = sorted(p.name for p in standby.glob("*.parquet"))[0]
    good = file_hash(standby / checkpoint)
    with open(standby / checkpoint, "r+b") as f:
        f.seek(8)
        byte = f.read(1)
        f.seek(8)
        f.write(bytes([byte[0] ^ 0x01]))
    (standby / data).unlink()

    lines, state = _cycle(sites)
    text = "\n".join(lines)
    assert f"file {checkpoint} is damaged" in text and f"{TABLE}: {checkpoint}: repaired" in text, text
    assert f"{TABLE}: {data}: repaired" in text, text
    assert len([ln for ln in lines if "on the standby" in ln]) == 2, text  # nothing else reported
    assert file_hash(standby / checkpoint) == good
    con = duck()
    assert rows(con, standby) == rows(con, primary)
    assert not state.tables[TABLE].problems and state.verified_barrier_ms is not None
    assert any(checkpoint in r for r in state.recent)


def test_steps_stay_within_the_budget_and_a_cycle_covers_everything_once_per_interval(tmp_path: Path) -> None:
    sites = _replicated(tmp_path)
    verifier = Verifier(load_settings(sites.config), tick_s=1.0)  # verify-interval 10s: 10 steps
    verifier.min_step_bytes = 1  # no floor: the budget alone paces the steps
    names = set(load_state(sites.standby_meta, StandbyState).tables)
    # a step stops after the item that crossed its budget: one file, or one table's row read
    largest = max(sum(e[0] for e in recorded_hashes(sites.standby_meta, n.replace(".", "/"), 0).values())
                  for n in names)
    steps, spent = 0, []
    try:
        while steps < 50:
            verifier.tick()
            steps += 1
            spent.append(verifier.last_step_bytes)
            assert verifier.last_step_bytes <= verifier.budget() + largest
            if verifier.current is None and not verifier.queue:
                break
        state: VerifyState = load_state(sites.standby_meta, VerifyState)
        assert set(state.tables) == names  # every table checked ...
        assert 2 <= steps <= 10, (steps, spent)  # ... spread over steps, within one interval
        assert verifier.total_bytes > 0 and sum(spent) >= verifier.total_bytes
        # the cycle is done: the next steps wait for the next interval, reading nothing
        before = (sites.standby_meta / VerifyState.FILE).read_bytes()
        assert verifier.tick() == [] and verifier.last_step_bytes == 0
        assert (sites.standby_meta / VerifyState.FILE).read_bytes() == before
        verifier.cycle_started = time.monotonic() - 10  # one interval later
        verifier.tick()
        assert verifier.last_step_bytes > 0
    finally:
        verifier.close()
