"""Collect one table's changes between the version the standby will have and the barrier.

The rules (DESIGN §3, refined in docs/architecture.md):

* **barrier version** `c`: the newest version whose commit time (in-commit timestamp, else the
  commit file's mtime) is at or before the barrier.
* **log files**: every log file of a version `<= c` that was not shipped before, but never one
  below the table's *log floor* (the checkpoint a full copy or resync started from): a version
  whose data files were not copied must never be exposed on the standby.
* **data files**: every data/DV/CDC file the new commits add (or the floor checkpoint holds)
  that the standby does not already hold. A file missing on the primary is mirrored as missing,
  with a warning when version `c` still needs it.
* **deletions**: files that commits removed and that are now gone from the primary's disk
  (VACUUM), and log files the primary cleaned up; the standby removes them after the set.

The primary keeps a small inventory per table (`TableInventory`) of what the standby holds, so
an unchanged table costs exactly one listing of its `_delta_log`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drsync.errors import TableFormatError, TableRecreatedError
from drsync.nofollow import refuse_symlink_path
from drsync.sets.manifest import apply_rank
from drsync.tableformat import delta
from drsync.tableformat.ddl import describe as describe_ddl
from drsync.tableformat.delta import LogListing


@dataclass
class TableInventory:
    """What the standby holds (or will, once shipped sets are applied) of one table."""

    version: int = -1
    table_id: str | None = None
    log_floor: int = 0
    commit_sig: list[int] = field(default_factory=list)  # [size, mtime_ns] of commit `version`
    files: dict[str, int] = field(default_factory=dict)  # data/DV/CDC path -> size
    removed: list[str] = field(default_factory=list)  # removed by a shipped commit, still on disk
    log_files: dict[str, int] = field(default_factory=dict)  # shipped log file -> size
    last_checkpoint_sig: list[int] = field(default_factory=list)
    # The table's schema, properties and protocol as of `version`, to describe DDL events
    ddl_state: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TableInventory:
        return cls(**obj)


@dataclass
class FileToShip:
    path: str  # relative to the table root
    kind: str  # data | dv | cdc | commit | checkpoint | sidecar | crc | compacted | last_checkpoint
    size: int
    mtime_ns: int
    version: int | None = None  # for log files
    content: bytes | None = None  # held in memory for files that may change (or were parsed)


@dataclass
class TableChange:
    name: str  # db.schema.table
    table_id: str | None
    mode: str  # full | incremental | resync
    from_version: int | None
    to_version: int
    files: list[FileToShip]
    deletions: list[str]
    ddl: list[dict[str, Any]]
    warnings: list[str]
    inventory: TableInventory  # the inventory after this set is applied
    # Some version in the range cannot be read even on the primary (its files were vacuumed
    # before this collect): the standby must make the new commits visible all at once, or
    # that version would be the table's latest for a moment (or until a re-run, after a kill).
    expose_at_once: bool = False
    replace: bool = False  # a complete copy that replaces the standby's table as a whole
    # Files version `to_version` needs that were already gone at collect (VACUUM running now,
    # or a table damaged on the primary): the primary cuts the set again in the first case.
    missing_needed: list[str] = field(default_factory=list)


def log_version(name: str) -> tuple[int, int] | None:
    """(first, last) version a log file belongs to, or None for `_last_checkpoint`."""
    base = name.rsplit("/", 1)[-1]
    if base == delta.LAST_CHECKPOINT:
        return None
    first = int(base[:20])
    if base.endswith(".compacted.json"):
        return first, int(base[21:41])
    return first, first


def _log_kind(name: str) -> str:
    if name.endswith(".compacted.json"):
        return "compacted"
    if ".checkpoint." in name:
        return "checkpoint"
    if name.endswith(".crc"):
        return "crc"
    if name.endswith(delta.LAST_CHECKPOINT):
        return "last_checkpoint"
    return "commit"


def commit_time_ms(table_dir: Path, listing: LogListing, version: int) -> int:
    """When a version was committed: in-commit timestamp if present, else file mtime."""
    lf = listing.commits.get(version)
    if lf is None:
        ckpt = listing.checkpoints[version]
        return ckpt.files[0].mtime_ns // 1_000_000
    with open(table_dir / lf.name, "rb") as f:
        first = f.readline()
    try:
        ict = delta.commit_timestamp_ms([json.loads(first)]) if first.strip() else None
    except ValueError:
        ict = None
    return ict if ict is not None else lf.mtime_ns // 1_000_000


def barrier_version(
    table_dir: Path, listing: LogListing, barrier_ms: int, floor: int
) -> int | None:
    """Newest version committed at or before the barrier, looking only above `floor`."""
    versions = sorted(
        {v for v in listing.commits if v > floor}
        | {v for v, c in listing.checkpoints.items() if c.complete and v > floor},
        reverse=True,
    )
    for v in versions:
        if commit_time_ms(table_dir, listing, v) <= barrier_ms:
            return v
    return None


def collect_changes(
    table_dir: Path,
    name: str,
    listing: LogListing,
    barrier_ms: int,
    prev: TableInventory | None,
) -> TableChange | None:
    """The change to ship for one table, or None when nothing changed since `prev`."""
    if prev is not None:
        _refuse_recreated(name, listing, prev)
    floor_for_barrier = prev.version if prev else -1
    c = barrier_version(table_dir, listing, barrier_ms, floor_for_barrier)
    if c is None:
        if prev is None:
            raise TableFormatError(f"table {name}: no complete version at or before the barrier")
        latest = listing.latest_version
        if latest is None or latest < prev.version:
            raise TableRecreatedError(
                f"table {name}: its log went back from version {prev.version} to {latest}: the table "
                "was dropped and re-created on the primary")
        # No new version, but the files under the shipped ones may have changed: a VACUUM that
        # writes no commit, a checkpoint or `_last_checkpoint` written late. Storage follows the
        # primary (DESIGN §3/§5), so look for those too; the result is None if there are none.
        c = prev.version
    inv = TableInventory.from_json(json.loads(json.dumps(prev.to_json()))) if prev else TableInventory()
    warnings: list[str] = []
    if prev is None:
        mode = "full"
    elif all(v in listing.commits for v in range(prev.version + 1, c + 1)):
        mode = "incremental"
    else:
        mode = "resync"
        warnings.append(
            f"table {name}: commits after version {prev.version} were cleaned up on the primary; "
            f"resynchronising from its newest checkpoint"
        )

    ship: dict[str, FileToShip] = {}
    removed_in_range: set[str] = set()
    ddl: list[dict[str, Any]] = []

    def add_data(ref: delta.FileRef) -> None:
        if ref.path in inv.files or ref.path in ship:
            return
        try:
            st = os.stat(table_dir / ref.path)
        except FileNotFoundError:
            ship[ref.path] = FileToShip(ref.path, ref.kind, -1, 0)  # placeholder: missing
            return
        ship[ref.path] = FileToShip(ref.path, ref.kind, st.st_size, st.st_mtime_ns)

    if mode in ("full", "resync"):
        ckpt = listing.newest_checkpoint(c)
        start = ckpt.version if ckpt else 0
        if ckpt is None and 0 not in listing.commits:
            raise TableFormatError(
                f"table {name}: the log has neither commit 0 nor a checkpoint at or below "
                f"version {c}; it cannot be read or copied"
            )
        if mode == "resync" and prev is not None and start <= prev.version:
            raise TableFormatError(
                f"table {name}: commits after version {prev.version} are missing on the primary "
                "and no newer checkpoint exists"
            )
        snap = delta.snapshot(table_dir, start, listing, name) if ckpt else None
        if snap is not None and mode == "resync":
            # What the standby holds and version `start` no longer needs was removed by commits
            # that were cleaned from the primary's log: no commit in the range names them, so
            # without this they would stay on the standby forever (storage follows, DESIGN §3).
            removed_in_range |= set(inv.files) - set(snap.data_files)
        if snap is not None:
            inv.table_id = snap.table_id
            for ref in snap.data_files.values():
                add_data(ref)
            for rel in snap.sidecars:
                st = os.stat(table_dir / rel)
                ship[rel] = FileToShip(rel, "sidecar", st.st_size, st.st_mtime_ns, start)
        inv.log_floor = start
        # Commit `start` itself is shipped when the primary still has it (mirror the log);
        # every file it adds is live at `start`, so the snapshot above already ships them.
        first_commit = start if start in listing.commits else start + 1
    else:
        first_commit = inv.version + 1

    for v in range(first_commit, c + 1):
        lf = listing.commits[v]
        data = (table_dir / lf.name).read_bytes()
        where = str(table_dir / lf.name)
        actions = delta.parse_commit_bytes(data, where=where)
        added = delta.files_added(actions, table=name, where=where)
        # A DV update removes and re-adds one path in one commit: the add wins.
        removed_in_range |= delta.files_removed(actions, table=name, where=where)
        removed_in_range -= {ref.path for ref in added}
        for ref in added:
            add_data(ref)
        ddl.extend(describe_ddl(delta.ddl_events(actions, v), inv.ddl_state))
        new_id = delta.table_id(actions)
        if prev is not None and prev.table_id and new_id and new_id != prev.table_id:
            raise TableRecreatedError(f"table {name}: commit {v} carries table id {new_id}, not "
                                      f"{prev.table_id}: the table was re-created on the primary")
        inv.table_id = new_id or inv.table_id
        ship[lf.name] = FileToShip(lf.name, "commit", lf.size, lf.mtime_ns, v, data)

    # Other log files: checkpoints, crc, compactions, written at any time for versions <= c.
    for lf in listing.all_files():
        if lf.name in ship or lf.name in inv.log_files:
            continue
        span = log_version(lf.name)
        if span is None:
            continue  # _last_checkpoint: below
        first, last = span
        if first < inv.log_floor or last > c:
            continue
        kind = _log_kind(lf.name)
        if kind == "commit":
            continue  # commits below first_commit are below the floor or already shipped
        ship[lf.name] = FileToShip(lf.name, kind, lf.size, lf.mtime_ns, first)
        if kind == "checkpoint":
            ckpt_obj = listing.checkpoints.get(first)
            # Any checkpoint kind but multi-part may carry sidecars: a classic-named
            # `<v>.checkpoint.parquet` may follow the V2 spec (see delta.checkpoint_sidecars).
            if ckpt_obj and lf in ckpt_obj.files:
                for rel in delta.checkpoint_sidecars(table_dir, ckpt_obj, name):
                    if rel not in inv.log_files and rel not in ship:
                        st = os.stat(table_dir / rel)
                        ship[rel] = FileToShip(rel, "sidecar", st.st_size, st.st_mtime_ns, first)
    _collect_last_checkpoint(table_dir, listing, c, inv, ship)

    # Missing files: mirrored as missing; warn when the barrier version needs them.
    expose_at_once = False
    missing_needed: list[str] = []
    for path, f in list(ship.items()):
        if f.size < 0:
            del ship[path]
            expose_at_once = True
            if path not in removed_in_range:
                missing_needed.append(path)
                warnings.append(
                    f"table {name}: file {path} needed by version {c} is missing on the primary; "
                    "mirrored as it is"
                )

    # A symlink in the table directory would ship whatever it points to (an SSH key, the
    # API token): such a table is left out of the set, named (docs/security.md).
    for path in ship:
        refuse_symlink_path(table_dir.parent, f"{table_dir.name}/{path}", table=name, what="path")
    deletions = _deletions(table_dir, listing, inv, removed_in_range)
    for f in ship.values():
        if f.kind in ("data", "dv", "cdc"):
            inv.files[f.path] = f.size
        elif f.kind != "last_checkpoint":
            inv.log_files[f.path] = f.size
    inv.removed = sorted(set(inv.removed) | (removed_in_range & set(inv.files)))
    from_version = prev.version if prev else None
    inv.version = c
    top = listing.commits.get(c)
    inv.commit_sig = [top.size, top.mtime_ns] if top else []
    if not ship and not deletions and prev is not None and prev.version == c:
        return None
    base = inv.log_floor if mode != "incremental" else None
    files = sorted(ship.values(), key=lambda f: apply_rank(f.kind, f.version, f.path, base))
    return TableChange(name, inv.table_id, mode, from_version, c, files, deletions, ddl, warnings, inv,
                       expose_at_once, missing_needed=missing_needed)


def _refuse_recreated(name: str, listing: LogListing, prev: TableInventory) -> None:
    """A table dropped and re-created with the same name may reuse every version number: the
    commit file of the version last shipped then differs from the one the standby has. Mixing
    the two tables' files would be silent corruption: the caller ships the new table in full,
    as a replacement (TableRecreatedError)."""
    if len(prev.commit_sig) != 2:
        return
    lf = listing.commits.get(prev.version)
    if lf is not None and [lf.size, lf.mtime_ns] != prev.commit_sig:
        raise TableRecreatedError(
            f"table {name}: commit {prev.version} on the primary is not the one shipped (size or "
            "time differs): the table was dropped and re-created")


def _collect_last_checkpoint(
    table_dir: Path, listing: LogListing, c: int, inv: TableInventory, ship: dict[str, FileToShip]
) -> None:
    lf = listing.last_checkpoint
    if lf is None or [lf.size, lf.mtime_ns] == inv.last_checkpoint_sig:
        return
    try:
        data = (table_dir / lf.name).read_bytes()
        version = int(json.loads(data)["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # a torn or odd hint file: readers fall back to listing; do not ship it
    if inv.log_floor <= version <= c and version in listing.checkpoints:
        ship[lf.name] = FileToShip(lf.name, "last_checkpoint", len(data), lf.mtime_ns, version, data)
        inv.last_checkpoint_sig = [lf.size, lf.mtime_ns]


def _deletions(
    table_dir: Path, listing: LogListing, inv: TableInventory, removed_in_range: set[str]
) -> list[str]:
    """Files the standby holds that the primary has removed from disk since."""
    gone: list[str] = []
    for path in sorted(set(inv.removed) | (removed_in_range & set(inv.files))):
        if not os.path.exists(table_dir / path):
            gone.append(path)
            inv.files.pop(path, None)
    inv.removed = [p for p in inv.removed if p not in gone]
    present = {lf.name for lf in listing.all_files()}
    for name in list(inv.log_files):
        if name.startswith(f"{delta.LOG_DIR}/{delta.SIDECAR_DIR}/"):
            if not os.path.exists(table_dir / name):
                gone.append(name)
                del inv.log_files[name]
        elif name not in present:
            gone.append(name)
            del inv.log_files[name]
    return gone
