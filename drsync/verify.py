"""`drsync verify`: prove the standby equals the primary at the last restored barrier.

For each replicated table at its barrier version `v` (from the standby state):
  * files: the data/DV files version `v` needs, on both sides, same names, sizes and BLAKE2b;
    every commit from the standby's first one up to `v`, byte-identical with the primary's
    (where the primary still has it);
  * `--deep`: row count and an order-independent checksum of all rows at `v`, read by DuckDB's
    delta extension on both sides (not by drsync's own log code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drsync.bundle import file_hash
from drsync.config import Settings
from drsync.errors import DrsyncError
from drsync.state import StandbyState, load_state
from drsync.tableformat.delta import list_log, snapshot
from drsync.warehouse import TableRef


@dataclass
class TableVerdict:
    name: str
    version: int
    ok: bool
    files_checked: int = 0
    rows: int | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def verify_tables(settings: Settings, only: str | None = None, deep: bool = False) -> list[TableVerdict]:
    state: StandbyState = load_state(settings.restore_metadata_destination, StandbyState)
    names = sorted(state.tables)
    if only is not None:
        if only not in state.tables:
            raise DrsyncError(f"table {only} is not replicated to this standby",
                              hint="run show-progress, or check the name (db.schema.table)")
        names = [only]
    con: Any = None
    if deep:
        from drsync.reader import connect

        con = connect()
    return [_verify_one(settings, name, state.tables[name].version, con) for name in names]


def _verify_one(settings: Settings, name: str, version: int, con: Any) -> TableVerdict:
    ref = TableRef.parse(name)
    pdir, sdir = ref.path(settings.primary_warehouse), ref.path(settings.standby_warehouse)
    v = TableVerdict(name, version, ok=True)
    try:
        s_listing = list_log(sdir)
        p_listing = list_log(pdir)
        s_snap = snapshot(sdir, version, s_listing, name)
    except DrsyncError as e:
        v.problems.append(f"standby copy unreadable at version {version}: {e.message}")
        v.ok = False
        return v
    try:
        p_snap = snapshot(pdir, version, p_listing, name)
        p_files = set(p_snap.data_files)
    except DrsyncError as e:
        p_files = None
        v.notes.append(f"primary can no longer replay version {version} ({e.message}); "
                       "compared against the standby's own log")
    s_files = set(s_snap.data_files)
    if p_files is not None and p_files != s_files:
        diff = sorted(p_files ^ s_files)
        v.problems.append(f"version {version} needs different files on the two sides, e.g. {diff[0]}")
    for rel in sorted(s_files):
        sp, pp = sdir / rel, pdir / rel
        if not pp.exists():
            if sp.exists():
                v.notes.append(f"{rel} no longer exists on the primary")
            continue
        if not sp.exists():
            v.problems.append(f"{rel} is missing on the standby")
            continue
        v.files_checked += 1
        if sp.stat().st_size != pp.stat().st_size or file_hash(sp) != file_hash(pp):
            v.problems.append(f"{rel} differs between primary and standby")
    for cv, lf in s_listing.commits.items():
        if cv > version:
            continue
        pf = p_listing.commits.get(cv)
        if pf is not None:
            v.files_checked += 1
            if file_hash(sdir / lf.name) != file_hash(pdir / pf.name):
                v.problems.append(f"commit {cv} differs between primary and standby")
    if con is not None:
        _deep(con, pdir, sdir, version, v)
    v.ok = not v.problems
    return v


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _deep(con: Any, pdir: Path, sdir: Path, version: int, v: TableVerdict) -> None:
    from drsync.reader import table_checksum

    try:
        p_rows: tuple[int, int] | None = table_checksum(con, pdir, version)
        p_err = ""
    except Exception as e:  # DuckDB raises its own error types
        p_rows, p_err = None, _first_line(e)
    try:
        s_rows = table_checksum(con, sdir, version)
    except Exception as e:
        if p_rows is None:  # damaged on the primary too: mirrored as it is, not a replication fault
            v.notes.append(f"neither side is readable by DuckDB at version {version} ({p_err})")
        else:
            v.problems.append(f"DuckDB cannot read the standby copy at version {version}: {_first_line(e)}")
        return
    if p_rows is None:
        v.rows = s_rows[0]
        v.notes.append(f"DuckDB cannot read the primary at version {version} any more ({p_err}); "
                       "rows not compared")
        return
    v.rows = s_rows[0]
    if s_rows != p_rows:
        v.problems.append(f"rows differ at version {version}: primary {p_rows[0]} rows, "
                          f"standby {s_rows[0]} rows (or same count, other content)")
