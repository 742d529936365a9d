"""Continuous verification on the standby daemon, and self-healing of what it finds.

Every replicated table is checked once per `verify-interval`, in small steps (`Verifier.tick`,
run every few seconds by the daemon, each hashing at most a byte budget sized so that the
whole standby is covered within the interval). A table check, at the version the standby
exposes: every file that version needs (the table format's `snapshot_files`, plus its commit
files) is present with the hash the manifest recorded, then the format's independent row
reader (Delta: DuckDB) reads a sample of rows (every column) back at that version.

Expected hashes: manifests leave the inbox with retention, so the restore pass keeps a small
record per table (standby/filehashes.py).

Never racing the restore pass: the check takes no lock. A finding counts only if no restore
ran meanwhile (the restore lock is free and the table's version unchanged when the check
ends); otherwise the table is checked again later. A repair fetches the file from the primary
through the Peer (`table_file`), checks it against the recorded hash and puts it back under the
restore lock (busy: tried again later) by temp + fsync + rename in the same directory, with
the replicated file's read-only mode and mtime: a reader sees the damaged file or the good
one, never a half-written one. A file the primary lacks (or holds with other content) stays
flagged, named in the state; the table's "verified restorable" barrier stops advancing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drsync.config import Settings
from drsync.errors import DrsyncError, LockBusyError
from drsync.peer import open_peer
from drsync.sets.digest import data_hash, file_hash
from drsync.site.layout import LOCK_DIR
from drsync.site.locks import lock_holder, operation_lock
from drsync.site.state import StandbyState, VerifiedTable, VerifyState, load_state, local_time, save_state
from drsync.site.warehouse import TableRef
from drsync.standby.filehashes import Expected, put_back, recorded_hashes
from drsync.tableformat import require_format

log = logging.getLogger("drsync.standby.continuous")
TICK_SECONDS = 5.0  # the daemon runs a step this often (its --tick overrides)
MIN_TICK_BYTES = 8 << 20  # a step hashes at least this much (or one file), whatever the budget
RECENT = 20  # findings and repairs kept for the page
ROW_SAMPLE = 10_000  # rows read back per table check (every column): bounded, whatever the table

# ---------------------------------------------------------------- the verifier


@dataclass
class _Check:
    """One table's check in progress (spread over several steps)."""

    name: str
    version: int
    pending: list[str]
    expected: dict[str, Expected]
    files: int = 0
    bad: dict[str, str] = field(default_factory=dict)  # rel -> "missing" | "damaged"
    log_dir: str | None = None  # the format's log directory ("<dir>/"); None: log unreadable


class Verifier:
    """The standby daemon's continuous verification; `tick` is one bounded step."""

    def __init__(self, settings: Settings, tick_s: float = TICK_SECONDS) -> None:
        self.settings, self.tick_s = settings, tick_s
        self.current: _Check | None = None
        self.queue: list[str] = []
        self.cycle_started: float | None = None  # monotonic start of the running cycle
        self.total_bytes = 0  # bytes the record holds over all tables (sizes the budget)
        self._readers: dict[str, Any] = {}
        self.min_step_bytes = MIN_TICK_BYTES
        self._carry: list[str] = []  # findings of a check redone after a log repair
        self.epoch = 0  # the standby's role epoch at the start of the cycle
        self.last_step_bytes = 0
        self.checked: set[str] = set()  # tables with a published verdict (this process)

    @property
    def meta(self) -> Path:
        return self.settings.restore_metadata_destination

    def budget(self) -> int:
        """Bytes per step so that every table is checked within verify-interval: each byte the
        standby holds is read twice (hashed, then by the row reader), with 25% slack."""
        interval = self.settings.verify_interval
        steps = max(1.0, interval.total_seconds() / self.tick_s) if interval else 1.0
        return max(self.min_step_bytes, int(2 * self.total_bytes / steps * 1.25))

    def tick(self) -> list[str]:
        """One step; the lines worth logging (findings, repairs, a finished cycle)."""
        if self.settings.verify_interval is None:
            return []
        lines: list[str] = []
        budget, spent = self.budget(), 0
        try:
            while spent < budget:
                if self.current is None and not self._next_table(lines):
                    break
                check = self.current
                assert check is not None
                if check.pending:
                    spent += self._check_file(check, check.pending.pop(0))
                    continue
                spent += self._finish(check, lines)
                self.current = None
        except BaseException:
            if self.current is not None:  # checked again in the next cycle, not at every step
                self.checked.add(self.current.name)
                self.current = None
            raise
        self.last_step_bytes = spent
        return lines

    def _next_table(self, lines: list[str]) -> bool:
        standby: StandbyState = load_state(self.meta, StandbyState)
        if not self.queue:
            interval = self.settings.verify_interval
            assert interval is not None
            since = time.monotonic() - (self.cycle_started or 0.0)
            if self.cycle_started is not None and since < interval.total_seconds():
                # this interval's cycle is done; a table replicated since is checked now
                self.queue = sorted(set(standby.tables) - self.checked)
                if not self.queue:
                    return False
            else:
                self.queue = sorted(standby.tables)
                self.cycle_started = time.monotonic()
            self.epoch = standby.role_epoch
            self.total_bytes = sum(e[0] for n in self.queue for e in
                                   recorded_hashes(self.meta, TableRef.parse(n).relpath, self.epoch).values())
        if lock_holder(self.meta / LOCK_DIR, "restore") is not None:
            return False  # a restore is changing tables: check after it
        while self.queue:
            name = self.queue.pop(0)
            table = standby.tables.get(name)
            if table is None:
                continue
            self.current = self._start(name, table.version)
            return True
        return False

    def _start(self, name: str, version: int) -> _Check:
        ref = TableRef.parse(name)
        tdir = ref.path(self.settings.standby_warehouse)
        expected = recorded_hashes(self.meta, ref.relpath, self.epoch)
        try:
            fmt = require_format(tdir)
            # the log files first (commits, checkpoints): the data files named come from them
            logs = {rel for rel in expected if rel.startswith(f"{fmt.log_dir}/")}
            logs |= {rel for cv, rel in fmt.commits(tdir).items() if cv <= version}
            needs = set(fmt.snapshot_files(tdir, name, version)) - logs
            return _Check(name, version, sorted(logs) + sorted(needs), expected, log_dir=f"{fmt.log_dir}/")
        except DrsyncError as e:  # the log itself is damaged: check every file the record holds
            log.debug("%s: version %d not replayable (%s); checking every recorded file", name, version, e)
            return _Check(name, version, sorted(expected), expected)

    def _check_file(self, check: _Check, rel: str) -> int:
        path = TableRef.parse(check.name).path(self.settings.standby_warehouse) / rel
        want = check.expected.get(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            check.bad[rel] = "missing"
            return 0
        check.files += 1
        if want is None:
            return 0  # installed before this standby recorded hashes: present is all we know
        try:
            if st.st_size != want[0] or file_hash(path, like=want[1]) != want[1]:
                check.bad[rel] = "damaged (its hash differs from the manifest's)"
        except FileNotFoundError:  # removed meanwhile (a restore deleting it: judged at the end)
            check.bad[rel] = "missing"
        return st.st_size

    def _stable(self, check: _Check) -> int | None:
        """The table's barrier now if no restore runs and its version is still the checked one."""
        if lock_holder(self.meta / LOCK_DIR, "restore") is not None:
            return None
        table = load_state(self.meta, StandbyState).tables.get(check.name)
        return table.barrier_ms if table is not None and table.version == check.version else None

    def _finish(self, check: _Check, lines: list[str]) -> int:
        """Repair what was found, read the rows back, publish the verdict. Bytes read."""
        if self._stable(check) is None:
            self.queue.append(check.name)  # a restore moved it meanwhile: check it again later
            return 0
        tdir = TableRef.parse(check.name).path(self.settings.standby_warehouse)
        mark = len(lines)
        problems: list[str] = []
        # A damaged log (or one unreadable at the start) names the wrong data files: repair the
        # log first, then check the table again from the start.
        log_bad = {rel: what for rel, what in check.bad.items()
                   if check.log_dir is None or rel.startswith(check.log_dir)}
        bad = log_bad or check.bad
        for rel, what in sorted(bad.items()):
            found = f"table {check.name} version {check.version}: file {rel} is {what} on the standby"
            log.warning("%s", found)
            lines.append(found)
            problems += self._repair(check, tdir, rel, lines)
        if bad and not problems and (check.log_dir is None or len(bad) < len(check.bad)):
            self._carry += lines[mark:]  # published with the table's next verdict
            self.queue.insert(0, check.name)
            return 0
        rows: int | None = None
        read = 0
        if not problems:
            try:
                fmt = require_format(tdir)
                if fmt.name not in self._readers:
                    self._readers[fmt.name] = fmt.open_row_reader(self.settings.cpu_cores)
                rows = fmt.sample_rows(self._readers[fmt.name], tdir, check.version, ROW_SAMPLE)
                read = sum(e[0] for e in check.expected.values())
            except Exception as e:  # DuckDB raises its own error types
                problems.append(f"rows unreadable at version {check.version}: {str(e).splitlines()[0]}")
        barrier = self._stable(check)
        if barrier is None:
            self.queue.append(check.name)
            return read
        self._publish(check, barrier, rows, problems, lines, mark)
        return read

    def _repair(self, check: _Check, tdir: Path, rel: str, lines: list[str]) -> list[str]:
        """Fetch `rel` from the primary and put it back; the problems left (none: repaired)."""
        want = check.expected.get(rel)
        where = f"table {check.name}: {rel}"
        if want is None:
            return [f"{rel} {check.bad[rel]}; no recorded hash to check a new copy against"]
        try:
            with open_peer(self.settings, toward="primary") as primary:
                data = primary.table_file(check.name, rel)
        except DrsyncError as e:
            return [f"{rel} {check.bad[rel]}; not repaired: the primary is unreachable ({e.message})"]
        if data is None:
            log.error("%s: not repaired: the primary no longer has this file", where)
            return [f"{rel} {check.bad[rel]}; the primary no longer has it"]
        if len(data) != want[0] or data_hash(data, like=want[1]) != want[1]:
            log.error("%s: not repaired: the primary's copy differs from the manifest's hash", where)
            return [f"{rel} {check.bad[rel]}; the primary's copy differs from the recorded hash"]
        try:
            with operation_lock(self.meta / LOCK_DIR, "restore"):
                if not self._stable_under_lock(check):  # judged again after that restore
                    return [f"{rel} {check.bad[rel]}; repair deferred: a restore changed the table"]
                put_back(tdir, rel, data, want[2])
                if file_hash(tdir / rel, like=want[1]) != want[1]:
                    return [f"{rel} {check.bad[rel]}; the repaired copy does not read back equal"]
        except LockBusyError:
            return [f"{rel} {check.bad[rel]}; repair deferred: a restore is running"]
        except DrsyncError as e:
            return [f"{rel} {check.bad[rel]}; not put back: {e.message}"]
        except OSError as e:
            return [f"{rel} {check.bad[rel]}; not put back: {e}"]
        done = f"{where}: repaired from the primary ({want[0]} bytes, hash checked)"
        log.warning("%s", done)
        lines.append(done)
        return []

    def _stable_under_lock(self, check: _Check) -> bool:
        table = load_state(self.meta, StandbyState).tables.get(check.name)
        return table is not None and table.version == check.version

    def _publish(self, check: _Check, barrier: int, rows: int | None, problems: list[str],
                 lines: list[str], mark: int) -> None:
        state: VerifyState = load_state(self.meta, VerifyState)
        standby: StandbyState = load_state(self.meta, StandbyState)
        interval = self.settings.verify_interval
        state.interval_s = int(interval.total_seconds()) if interval else None
        before = state.tables.get(check.name, VerifiedTable())
        entry = VerifiedTable(version=check.version, checked_at=local_time(), files=check.files, rows=rows,
                              problems=problems,
                              verified_barrier_ms=before.verified_barrier_ms if problems else barrier)
        state.tables[check.name] = entry
        self.checked.add(check.name)
        state.tables = {n: t for n, t in state.tables.items() if n in standby.tables}
        barriers = [state.tables[n].verified_barrier_ms if n in state.tables else None
                    for n in standby.tables]
        state.verified_barrier_ms = None if None in barriers else min(b for b in barriers if b is not None)
        stamp = local_time()
        found, self._carry = self._carry + lines[mark:], []
        state.recent = (state.recent + [f"{stamp} {line}" for line in found]
                        + [f"{stamp} table {check.name}: {p}" for p in problems])[-RECENT:]
        save_state(self.meta, state)
        if problems:
            lines.append(f"table {check.name} version {check.version} stays flagged: {'; '.join(problems)}")
        log.debug("table %s verified at version %d (%d files, %s rows)", check.name, check.version,
                  check.files, rows)

    def close(self) -> None:
        for reader in self._readers.values():
            with contextlib.suppress(Exception):
                reader.close()
        self._readers.clear()
