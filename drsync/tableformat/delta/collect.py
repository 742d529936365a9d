"""Delta's side of collecting one table's changes between the version the standby will have
and the barrier (the rules: drsync/primary/changes.py and docs/architecture.md).

Delta specifics: the *log floor* (the checkpoint a full copy or resync started from, with its
sidecars), commits read for added/removed files, DDL events and the table id, checkpoints,
crc and compaction files shipped as written, `_last_checkpoint` shipped as a pointer, and
log cleanup on the primary followed on the standby.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from drsync.errors import TableFormatError, TableRecreatedError
from drsync.nofollow import refuse_symlink_path
from drsync.tableformat.base import FileRef, FileToShip, TableChange, TableInventory
from drsync.tableformat.delta import actions as delta_actions
from drsync.tableformat.delta.checkpoints import checkpoint_sidecars, snapshot
from drsync.tableformat.delta.ddl import describe as describe_ddl
from drsync.tableformat.delta.log import (
    LOG_DIR,
    SIDECAR_DIR,
    LogListing,
    log_kind,
    log_version,
)

DATA_KINDS = ("data", "dv", "cdc")


def apply_rank(kind: str, version: int | None, path: str, base: int | None) -> tuple[int, int, str]:
    """Install order that keeps every exposed version readable (DESIGN §3): data files; the
    base checkpoint of a full copy or resync (with its sidecars); commits in version order;
    later checkpoints, crc and compaction files; `_last_checkpoint` last."""
    v = version if version is not None else -1
    if kind in DATA_KINDS:
        rank = 0
    elif kind in ("checkpoint", "sidecar") and v == base:
        rank = 1
    elif kind == "commit":
        rank = 2
    elif kind == "last_checkpoint":
        rank = 4
    else:
        rank = 3
    return (rank, v, path)


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
    c = delta_actions.barrier_version(table_dir, listing, barrier_ms, floor_for_barrier)
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

    def add_data(ref: FileRef) -> None:
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
        snap = snapshot(table_dir, start, listing, name) if ckpt else None
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
        actions = delta_actions.parse_commit_bytes(data, where=where)
        added = delta_actions.files_added(actions, table=name, where=where)
        # A DV update removes and re-adds one path in one commit: the add wins.
        removed_in_range |= delta_actions.files_removed(actions, table=name, where=where)
        removed_in_range -= {ref.path for ref in added}
        for ref in added:
            add_data(ref)
        ddl.extend(describe_ddl(delta_actions.ddl_events(actions, v), inv.ddl_state))
        new_id = delta_actions.table_id(actions)
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
        kind = log_kind(lf.name)
        if kind == "commit":
            continue  # commits below first_commit are below the floor or already shipped
        ship[lf.name] = FileToShip(lf.name, kind, lf.size, lf.mtime_ns, first)
        if kind == "checkpoint":
            ckpt_obj = listing.checkpoints.get(first)
            # Any checkpoint kind but multi-part may carry sidecars: a classic-named
            # `<v>.checkpoint.parquet` may follow the V2 spec (see checkpoint_sidecars).
            if ckpt_obj and lf in ckpt_obj.files:
                for rel in checkpoint_sidecars(table_dir, ckpt_obj, name):
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
        if f.kind in DATA_KINDS:
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
                       expose_at_once, missing_needed=missing_needed, format=LogListing.format_name)


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
        if name.startswith(f"{LOG_DIR}/{SIDECAR_DIR}/"):
            if not os.path.exists(table_dir / name):
                gone.append(name)
                del inv.log_files[name]
        elif name not in present:
            gone.append(name)
            del inv.log_files[name]
    return gone
