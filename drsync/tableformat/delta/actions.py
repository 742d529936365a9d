"""Delta log actions: parsing a commit (untrusted input, refused by name when malformed),
the files it adds and removes, its DDL events and the table id it carries."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from drsync.errors import TableFormatError
from drsync.tableformat.base import FileRef
from drsync.tableformat.delta.log import LOG_DIR, LogListing
from drsync.tableformat.delta.paths import data_path, deletion_vector_path

# --- actions ----------------------------------------------------------------------------


def read_commit(table_dir: Path, version: int) -> list[dict[str, Any]]:
    path = table_dir / LOG_DIR / f"{version:020d}.json"
    return parse_commit_bytes(path.read_bytes(), where=str(path))


def parse_commit_bytes(data: bytes, *, where: str) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = []
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise TableFormatError(f"{where}: line {n} is not valid JSON ({e})") from None
        if not isinstance(obj, dict):
            raise TableFormatError(f"{where}: line {n} is not a JSON object")
        check_action(obj, where=f"{where}: line {n}")
        actions.append(obj)
    return actions


# Actions whose value must be a JSON object, and those of them that must carry a path.
_OBJECT_ACTIONS = ("add", "remove", "cdc", "sidecar", "metaData", "protocol", "commitInfo",
                   "txn", "domainMetadata", "checkpointMetadata")
_PATH_ACTIONS = ("add", "remove", "cdc", "sidecar")


def check_action(obj: dict[str, Any], *, where: str) -> None:
    """Refuse malformed actions up front (`{"add": null}`, an `add` without a path, a
    non-object deletion vector): otherwise they surface later as KeyError/TypeError, which
    are not DrsyncErrors and would abort the whole round instead of failing just this table."""
    for key in _OBJECT_ACTIONS:
        if key not in obj:
            continue
        value = obj[key]
        if not isinstance(value, dict):
            raise TableFormatError(f"{where}: '{key}' action is not a JSON object")
        if key in _PATH_ACTIONS and (not isinstance(value.get("path"), str) or not value["path"]):
            raise TableFormatError(f"{where}: '{key}' action has no valid 'path'")
        dv = value.get("deletionVector")
        if key in ("add", "remove") and dv is not None and not isinstance(dv, dict):
            raise TableFormatError(f"{where}: '{key}' action has a malformed 'deletionVector'")


def commit_timestamp_ms(actions: list[dict[str, Any]]) -> int | None:
    """In-commit timestamp (Delta ICT) if the commit carries one, else None."""
    # Called on a commit's unvalidated first line (the barrier reads only that): tolerate any
    # shape here; a malformed commit is refused by name when it is parsed for collection.
    info = actions[0].get("commitInfo") if actions and isinstance(actions[0], dict) else None
    ict = info.get("inCommitTimestamp") if isinstance(info, dict) else None
    return ict if isinstance(ict, int) and not isinstance(ict, bool) else None


def files_added(actions: list[dict[str, Any]], *, table: str, where: str) -> list[FileRef]:
    """Every file an `add` or `cdc` action of one commit needs (data, DV, CDC)."""
    out: list[FileRef] = []
    for a in actions:
        if "add" in a:
            add = a["add"]
            out.append(FileRef(data_path(add["path"], table=table, where=where), add.get("size"), "data"))
            dv = deletion_vector_path(add.get("deletionVector"), table=table, where=where)
            if dv:
                out.append(FileRef(dv, None, "dv"))
        elif "cdc" in a:
            cdc = a["cdc"]
            out.append(FileRef(data_path(cdc["path"], table=table, where=where), cdc.get("size"), "cdc"))
    return out


def files_removed(actions: list[dict[str, Any]], *, table: str, where: str) -> set[str]:
    """Data and DV files `remove` actions of one commit take out of the table."""
    out: set[str] = set()
    for a in actions:
        if "remove" in a:
            rm = a["remove"]
            out.add(data_path(rm["path"], table=table, where=where))
            dv = deletion_vector_path(rm.get("deletionVector"), table=table, where=where)
            if dv:
                out.add(dv)
    return out


def ddl_events(actions: list[dict[str, Any]], version: int) -> list[dict[str, Any]]:
    """Schema/protocol/property changes a commit carries (listed in the manifest)."""
    op = ""
    for a in actions:
        if "commitInfo" in a:
            op = str(a["commitInfo"].get("operation", ""))
    events = []
    for a in actions:
        if "metaData" in a:
            md = a["metaData"]
            events.append({"version": version, "kind": "metaData", "operation": op,
                           "table_id": md.get("id"), "schema": md.get("schemaString"),
                           "configuration": md.get("configuration") or {}})
        elif "protocol" in a:
            events.append({"version": version, "kind": "protocol", "operation": op, **a["protocol"]})
    return events


def table_id(actions: list[dict[str, Any]]) -> str | None:
    for a in actions:
        if "metaData" in a:
            return str(a["metaData"].get("id"))
    return None


def rows_added(actions: list[dict[str, Any]]) -> int:
    """Rows a commit's `add` actions added, from their statistics (0 where they have none)."""
    n = 0
    for a in actions:
        add = a.get("add")
        if isinstance(add, dict) and isinstance(add.get("stats"), str):
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                n += int(json.loads(add["stats"]).get("numRecords", 0))
    return n


def commit_time_ms(table_dir: Path, listing: LogListing, version: int) -> int:
    """When a version was committed: in-commit timestamp if present, else file mtime."""
    lf = listing.commits.get(version)
    if lf is None:
        ckpt = listing.checkpoints[version]
        return ckpt.files[0].mtime_ns // 1_000_000
    with open(table_dir / lf.name, "rb") as f:
        first = f.readline()
    try:
        ict = commit_timestamp_ms([json.loads(first)]) if first.strip() else None
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
