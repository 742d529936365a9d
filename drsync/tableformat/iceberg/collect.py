"""Iceberg's side of collecting one table's changes up to the barrier.

Ships what the barrier's metadata JSON reaches and the standby lacks: data files, manifests,
manifest lists (immutable, shipped once), that one metadata JSON, and version-hint.text naming
it (the commit point, installed last). What the standby holds and that metadata no longer
reaches (expired snapshots, older metadata JSON) is listed for deletion, removed after the
pointer switched.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from drsync.errors import TableFormatError, TableRecreatedError
from drsync.nofollow import refuse_symlink_path
from drsync.tableformat.base import FileToShip, TableChange, TableInventory
from drsync.tableformat.iceberg import catalog, deleterewrite
from drsync.tableformat.iceberg.metadata import HINT, MetadataLog, hint_text, read_version
from drsync.tableformat.iceberg.reachable import DATA_CONTENT, reach

DATA_KINDS = ("data", "delete", "stats")
# install order: data and delete files, manifests, manifest lists, metadata JSON, the pointer
RANKS = {"data": 0, "delete": 0, "stats": 0, "manifest": 1, "manifest_list": 2, "metadata": 3, "hint": 4}


def barrier_version(table_dir: Path, log: MetadataLog, barrier_ms: int, floor: int) -> int | None:
    """The newest metadata committed at or before the barrier that is still on disk."""
    for v in sorted(log.versions, reverse=True):
        rel, ts = log.versions[v]
        if v > floor and ts <= barrier_ms and (table_dir / rel).is_file():
            return v
    return None


def collect_changes(table_dir: Path, name: str, log: MetadataLog, barrier_ms: int,
                    prev: TableInventory | None) -> TableChange | None:
    latest = log.latest_version
    if prev is not None and latest is not None and latest < prev.version:
        raise TableRecreatedError(f"table {name}: its metadata went back from version {prev.version} "
                                  f"to {latest}: the table was dropped and re-created on the primary")
    c = barrier_version(table_dir, log, barrier_ms, prev.version if prev else -1)
    if c is None:
        if prev is None:
            raise TableFormatError(f"table {name}: no complete version at or before the barrier")
        return None  # nothing committed since: Iceberg writers change files only by commits
    rel, _ = log.versions[c]
    raw, meta = (log.raw, log.metadata) if rel == log.current else read_version(table_dir, rel, name)
    uuid = meta.get("table-uuid")
    if prev is not None and prev.table_id and uuid and uuid != prev.table_id:
        raise TableRecreatedError(f"table {name}: metadata {rel} carries table uuid {uuid}, not "
                                  f"{prev.table_id}: the table was re-created on the primary")
    inv = TableInventory.from_json(json.loads(json.dumps(prev.to_json()))) if prev else TableInventory()
    reached = reach(table_dir, meta, name)
    for path, (_, content) in sorted(reached.files.items()):
        if content != DATA_CONTENT:
            deleterewrite.refuse_delete_files(name, path, content)
    ship: dict[str, FileToShip] = {}
    warnings: list[str] = []
    missing_needed: list[str] = []

    def add(path: str, kind: str, version: int | None, held: dict[str, int]) -> None:
        if path in held or path in ship:
            return
        try:
            st = os.stat(table_dir / path)
        except FileNotFoundError:
            missing_needed.append(path)
            warnings.append(f"table {name}: file {path} needed by version {c} is missing on the primary")
            return
        ship[path] = FileToShip(path, kind, st.st_size, st.st_mtime_ns, version)

    for path, (_, content) in sorted(reached.files.items()):
        # delete files ship as "delete": the standby rewrites the paths inside position deletes
        add(path, "data" if content == DATA_CONTENT else "delete", None, inv.files)
    for path in sorted(reached.stats):
        add(path, "stats", None, inv.files)
    for path in sorted(reached.manifests):
        add(path, "manifest", c, inv.log_files)
    for path in sorted(reached.manifest_lists):
        add(path, "manifest_list", c, inv.log_files)
    for path in reached.missing:
        if path not in missing_needed:
            missing_needed.append(path)
            warnings.append(f"table {name}: file {path} needed by version {c} is missing on the primary")
    st = os.stat(table_dir / rel)
    ship[rel] = FileToShip(rel, "metadata", len(raw), st.st_mtime_ns, c, raw)
    hint = hint_text(rel).encode()
    ship[HINT] = FileToShip(HINT, "hint", len(hint), st.st_mtime_ns, c, hint)
    for path in ship:
        refuse_symlink_path(table_dir.parent, f"{table_dir.name}/{path}", table=name, what="path")

    live_data = set(reached.files) | set(reached.stats)
    live_log = set(reached.manifests) | set(reached.manifest_lists) | {rel}
    deletions = sorted((set(inv.files) - live_data) | (set(inv.log_files) - live_log))
    for f in ship.values():
        if f.kind in DATA_KINDS:
            inv.files[f.path] = f.size
        elif f.kind != "hint":
            inv.log_files[f.path] = f.size
    for gone in deletions:
        inv.files.pop(gone, None)
        inv.log_files.pop(gone, None)
    ddl = ddl_events(meta, c, inv.ddl_state)
    from_version = prev.version if prev else None
    inv.version, inv.table_id = c, uuid
    files = sorted(ship.values(), key=lambda f: (RANKS[f.kind], f.path))
    return TableChange(name, uuid, "full" if prev is None else "incremental", from_version, c, files,
                       deletions, ddl, warnings, inv, missing_needed=missing_needed, format="iceberg",
                       catalog=catalog.primary_identifier(table_dir))


def _columns(meta: dict[str, Any]) -> dict[str, str]:
    sid = meta.get("current-schema-id")
    for s in meta.get("schemas") or []:
        if s.get("schema-id") == sid:
            return {str(f.get("name")): json.dumps(f.get("type")) for f in s.get("fields") or []}
    return {}


def _spec(meta: dict[str, Any]) -> list[str]:
    sid = meta.get("default-spec-id")
    for s in meta.get("partition-specs") or []:
        if s.get("spec-id") == sid:
            return [f"{f.get('transform')}({f.get('source-id')})" for f in s.get("fields") or []]
    return []


def ddl_events(meta: dict[str, Any], version: int, state: dict[str, Any]) -> list[dict[str, Any]]:
    """Schema and partition-spec changes since `state` (updated in place)."""
    cols, spec = _columns(meta), _spec(meta)
    events: list[dict[str, Any]] = []
    if "columns" in state:
        old = state["columns"]
        changes = [f"added column {c}" for c in cols if c not in old]
        changes += [f"dropped column {c}" for c in old if c not in cols]
        changes += [f"changed type of {c}" for c in cols if c in old and old[c] != cols[c]]
        if changes:
            events.append({"version": version, "kind": "schema", "change": "; ".join(changes)})
        if state.get("spec") != spec:
            events.append({"version": version, "kind": "partitioning",
                           "change": f"partition spec now [{', '.join(spec)}]"})
    state["columns"], state["spec"] = cols, spec
    return events
