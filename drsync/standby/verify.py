"""`drsync verify`: prove the standby equals the primary at the last restored barrier.

For each replicated table at its barrier version `v` (from the standby state), each side
computes a **fingerprint** of its own copy, on its own host:
  * the data/DV files version `v` needs, with sizes and BLAKE2b;
  * the BLAKE2b of every commit file up to `v`;
  * `--deep`: row count and an order-independent checksum of all rows at `v`, read by DuckDB's
    delta extension (not by drsync's own log code).
The two fingerprints are then compared here. With transport=ssh the other side's fingerprint
comes from its agent (`fingerprint` operation), so no table data crosses the link: verify runs
on either host, and each side's files are hashed where they live.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from drsync.config import Settings
from drsync.errors import DrsyncError
from drsync.sets.bundle import file_hash
from drsync.site.state import PrimaryState, StandbyState, load_state
from drsync.site.warehouse import TableRef
from drsync.tableformat.delta import list_log, snapshot


@dataclass
class TableVerdict:
    name: str
    version: int
    ok: bool
    files_checked: int = 0
    rows: int | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Fingerprint(BaseModel):
    """One side's copy of one table at one version; plain data, so it can cross the link."""

    version: int
    error: str = ""  # the log could not be replayed at `version` on this side
    needs: list[str] | None = None  # data/DV files `version` needs (None: not replayable)
    files: dict[str, tuple[int, str]] = {}  # rel -> (size, blake2b) of those present here
    commits: dict[int, str] = {}  # commit version <= `version` -> blake2b
    rows: tuple[int, int] | None = None  # (count, checksum) read by DuckDB
    rows_error: str = ""


def fingerprint(table_dir: Path, name: str, version: int, deep: bool = False,
                also_hash: list[str] | None = None, con: Any = None) -> Fingerprint:
    """This side's fingerprint. `also_hash`: files the other side's version needs, hashed here
    too when present, so a file both hold is compared even where this side cannot replay."""
    fp = Fingerprint(version=version)
    try:
        listing = list_log(table_dir)
        fp.commits = {cv: file_hash(table_dir / lf.name)
                      for cv, lf in listing.commits.items() if cv <= version}
        fp.needs = sorted(snapshot(table_dir, version, listing, name).data_files)
    except DrsyncError as e:
        fp.error = e.message
    for rel in sorted(set(fp.needs or []) | set(also_hash or [])):
        path = table_dir / rel
        if path.is_file():
            fp.files[rel] = (path.stat().st_size, file_hash(path))
    if deep:
        from drsync.standby.reader import connect, table_checksum

        try:
            fp.rows = table_checksum(con if con is not None else connect(), table_dir, version)
        except Exception as e:  # DuckDB raises its own error types
            fp.rows_error = _first_line(e)
    return fp


def compare(name: str, standby: Fingerprint, primary: Fingerprint) -> TableVerdict:
    v = TableVerdict(name, standby.version, ok=True)
    if standby.needs is None:
        v.problems.append(f"standby copy unreadable at version {v.version}: {standby.error}")
        v.ok = False
        return v
    if primary.needs is None:
        v.notes.append(f"primary can no longer replay version {v.version} ({primary.error}); "
                       "compared against the standby's own log")
    elif set(primary.needs) != set(standby.needs):
        diff = sorted(set(primary.needs) ^ set(standby.needs))
        v.problems.append(f"version {v.version} needs different files on the two sides, e.g. {diff[0]}")
    for rel in standby.needs:
        mine, theirs = standby.files.get(rel), primary.files.get(rel)
        if theirs is None:
            if mine is not None:
                v.notes.append(f"{rel} no longer exists on the primary")
            continue
        if mine is None:
            v.problems.append(f"{rel} is missing on the standby")
            continue
        v.files_checked += 1
        if mine != theirs:
            v.problems.append(f"{rel} differs between primary and standby")
    for cv, digest in sorted(standby.commits.items()):
        if cv in primary.commits:
            v.files_checked += 1
            if primary.commits[cv] != digest:
                v.problems.append(f"commit {cv} differs between primary and standby")
    _compare_rows(v, standby, primary)
    v.ok = not v.problems
    return v


def _compare_rows(v: TableVerdict, standby: Fingerprint, primary: Fingerprint) -> None:
    if standby.rows is None and not standby.rows_error:
        return  # not --deep
    if standby.rows is None:
        if primary.rows is None:  # damaged on the primary too: mirrored as it is, not a fault
            v.notes.append(f"neither side is readable by DuckDB at version {v.version} "
                           f"({primary.rows_error})")
        else:
            v.problems.append(f"DuckDB cannot read the standby copy at version {v.version}: "
                              f"{standby.rows_error}")
        return
    v.rows = standby.rows[0]
    if primary.rows is None:
        v.notes.append(f"DuckDB cannot read the primary at version {v.version} any more "
                       f"({primary.rows_error}); rows not compared")
    elif standby.rows != primary.rows:
        v.problems.append(f"rows differ at version {v.version}: primary {primary.rows[0]} rows, "
                          f"standby {standby.rows[0]} rows (or same count, other content)")


# ---------------------------------------------------------------- the two sides


Side = Literal["primary", "standby"]


class _Sides:
    """Where each side's fingerprints come from: this host, or the other host's agent."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.remote: Side | None = None
        self._link: Any = None
        if settings.transport == "ssh":
            here = [side for side, meta, model in (
                ("standby", settings.restore_metadata_destination, StandbyState),
                ("primary", settings.primary_metadata_destination, PrimaryState))
                if (meta / model.FILE).exists()]
            if not here:
                raise DrsyncError("verify: this host holds neither side's DR state",
                                  hint="run verify on the primary or the standby, with its backupRestore.ini")
            self.remote = "primary" if here[0] == "standby" else "standby"

    def standby_state(self) -> StandbyState:
        if self.remote != "standby":
            state: StandbyState = load_state(self.settings.restore_metadata_destination, StandbyState)
            return state
        raw = self._agent().read_bytes("metadata", StandbyState.FILE)
        if raw is None:
            raise DrsyncError("verify: the standby has no DR state yet", hint="run a restore first")
        return StandbyState.model_validate(json.loads(raw))

    def fingerprint(self, side: Side, name: str, version: int, deep: bool, also_hash: list[str] | None,
                    con: Any) -> Fingerprint:
        if side == self.remote:
            reply = self._agent().call("fingerprint", table=name, version=version, deep=deep,
                                       also_hash=also_hash or [])
            return Fingerprint.model_validate(reply["fingerprint"])
        table_dir = TableRef.parse(name).path(self.settings.warehouse(side))
        return fingerprint(table_dir, name, version, deep, also_hash, con)

    def _agent(self) -> Any:
        if self._link is None:
            from drsync.transport.ssh import SshTransport

            assert self.remote is not None
            self._link = SshTransport(self.settings, peer=self.remote)
        return self._link

    def close(self) -> None:
        if self._link is not None:
            self._link.close()


def verify_tables(settings: Settings, only: str | None = None, deep: bool = False) -> list[TableVerdict]:
    sides = _Sides(settings)
    try:
        state = sides.standby_state()
        names = sorted(state.tables)
        if only is not None:
            if only not in state.tables:
                raise DrsyncError(f"table {only} is not replicated to this standby",
                                  hint="run show-progress, or check the name (db.schema.table)")
            names = [only]
        con: Any = None
        if deep:
            from drsync.standby.reader import connect

            con = connect()
        verdicts = []
        for name in names:
            version = state.tables[name].version
            mine = sides.fingerprint("standby", name, version, deep, None, con)
            theirs = sides.fingerprint("primary", name, version, deep, mine.needs, con)
            verdicts.append(compare(name, mine, theirs))
        return verdicts
    finally:
        sides.close()


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
