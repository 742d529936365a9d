"""Delta Lake log reading: what files a table is made of, per version.

Why our own replay instead of `deltalake.DeltaTable`: drsync needs the *files* behind a version
(data, deletion-vector and change-data files, checkpoint parts, sidecars), including tables
whose reader features delta-rs refuses to open (variant types, newer protocol features) and
tables whose log is partly cleaned. That is the simple, stable part of the protocol: list
`_delta_log`, read `add`/`remove`/`cdc`/`sidecar` actions from JSON commits and Parquet
checkpoints. Reading *rows* is left to real readers (DuckDB, deltalake) in verify and tests.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow.parquet as pq

from drsync.errors import TableFormatError
from drsync.site.confine import safe_relpath

LOG_DIR = "_delta_log"
SIDECAR_DIR = "_sidecars"
LAST_CHECKPOINT = "_last_checkpoint"

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CRC = re.compile(r"^(\d{20})\.crc$")
_CKPT_CLASSIC = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
_CKPT_MULTI = re.compile(r"^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$")
_CKPT_V2 = re.compile(r"^(\d{20})\.checkpoint\.[0-9a-fA-F-]{36}\.(json|parquet)$")
_COMPACTED = re.compile(r"^(\d{20})\.(\d{20})\.compacted\.json$")


@dataclass(frozen=True)
class LogFile:
    name: str  # relative to the table root, e.g. "_delta_log/00000000000000000003.json"
    size: int
    mtime_ns: int


@dataclass
class Checkpoint:
    version: int
    files: list[LogFile]  # all parts (multi-part) or the single top-level file
    kind: str  # "classic" | "multipart" | "v2"
    complete: bool = True


@dataclass
class LogListing:
    """One `listdir` of `_delta_log`, classified. Costs one directory scan per table."""

    commits: dict[int, LogFile] = field(default_factory=dict)
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
    crcs: dict[int, LogFile] = field(default_factory=dict)
    compactions: list[tuple[int, int, LogFile]] = field(default_factory=list)
    last_checkpoint: LogFile | None = None

    @property
    def latest_version(self) -> int | None:
        candidates = list(self.commits) + [v for v, c in self.checkpoints.items() if c.complete]
        return max(candidates) if candidates else None

    def newest_checkpoint(self, at_most: int) -> Checkpoint | None:
        ok = [v for v, c in self.checkpoints.items() if c.complete and v <= at_most]
        return self.checkpoints[max(ok)] if ok else None

    def all_files(self) -> list[LogFile]:
        out = list(self.commits.values()) + list(self.crcs.values())
        for c in self.checkpoints.values():
            out.extend(c.files)
        out.extend(f for _, _, f in self.compactions)
        if self.last_checkpoint:
            out.append(self.last_checkpoint)
        return out


def is_delta_table(path: Path) -> bool:
    return (path / LOG_DIR).is_dir()


def list_log(table_dir: Path) -> LogListing:
    listing = LogListing()
    log = table_dir / LOG_DIR
    multi: dict[int, dict[str, Any]] = {}
    try:
        entries = list(os.scandir(log))
    except FileNotFoundError:
        raise TableFormatError(f"{table_dir}: no {LOG_DIR} directory, not a Delta table") from None
    for e in entries:
        if not e.is_file(follow_symlinks=False):
            continue
        st = e.stat(follow_symlinks=False)
        lf = LogFile(f"{LOG_DIR}/{e.name}", st.st_size, st.st_mtime_ns)
        if m := _COMMIT.match(e.name):
            listing.commits[int(m[1])] = lf
        elif m := _CRC.match(e.name):
            listing.crcs[int(m[1])] = lf
        elif m := _CKPT_CLASSIC.match(e.name):
            listing.checkpoints[int(m[1])] = Checkpoint(int(m[1]), [lf], "classic")
        elif m := _CKPT_MULTI.match(e.name):
            slot = multi.setdefault(int(m[1]), {"parts": int(m[3]), "files": []})
            slot["files"].append(lf)
        elif m := _CKPT_V2.match(e.name):
            # Several writers may race to write a V2 checkpoint of one version: any one will do,
            # but always the same one (smallest name), or rounds would flip between them and
            # delete on the standby the one it has.
            v = int(m[1])
            had = listing.checkpoints.get(v)
            if had is None or (had.kind == "v2" and lf.name < had.files[0].name):
                listing.checkpoints[v] = Checkpoint(v, [lf], "v2")
        elif m := _COMPACTED.match(e.name):
            listing.compactions.append((int(m[1]), int(m[2]), lf))
        elif e.name == LAST_CHECKPOINT:
            listing.last_checkpoint = lf
    for v, slot in multi.items():
        if v not in listing.checkpoints:
            files = sorted(slot["files"], key=lambda f: f.name)
            listing.checkpoints[v] = Checkpoint(
                v, files, "multipart", complete=len(files) == slot["parts"]
            )
    return listing


# --- paths ------------------------------------------------------------------------------

_Z85 = "0123456789abcdefghijklmnopqrstuvwxyz" "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_Z85_INDEX = {c: i for i, c in enumerate(_Z85)}


def _z85_decode(text: str) -> bytes:
    if len(text) % 5:
        raise ValueError("z85 length must be a multiple of 5")
    out = bytearray()
    for i in range(0, len(text), 5):
        value = 0
        for ch in text[i : i + 5]:
            value = value * 85 + _Z85_INDEX[ch]
        out += value.to_bytes(4, "big")
    return bytes(out)


def data_path(uri_path: str, *, table: str, where: str) -> str:
    """`add.path`/`remove.path`/`cdc.path` are URL-encoded relative URIs (Delta protocol)."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri_path):
        return safe_relpath(uri_path, table=table, where=where)  # raises: absolute
    return safe_relpath(unquote(uri_path), table=table, where=where)


def deletion_vector_path(dv: dict[str, Any] | None, *, table: str, where: str) -> str | None:
    """The file a deletion vector lives in, or None for inline DVs."""
    if not dv:
        return None
    # The log is untrusted input: anything but the documented shapes is this table's error,
    # never a Python TypeError/OverflowError that would abort the whole round.
    if not isinstance(dv, dict):
        raise TableFormatError(f"table {table}: {where}: malformed deletion vector {dv!r}")
    storage = dv.get("storageType")
    value = dv.get("pathOrInlineDv") or ""
    if storage == "i":
        return None
    if not isinstance(value, str):
        raise TableFormatError(f"table {table}: {where}: malformed deletion vector {dv!r}")
    if storage == "p":
        safe_relpath(value, table=table, where=where)  # always absolute: raises with the name
        return value
    if storage != "u" or len(value) < 20:
        raise TableFormatError(f"table {table}: {where}: unknown deletion vector {dv!r}")
    prefix, encoded = value[:-20], value[-20:]
    try:
        raw = _z85_decode(encoded)
    except (ValueError, KeyError, OverflowError):  # Overflow: a 5-char group above 2**32
        raise TableFormatError(f"table {table}: {where}: bad deletion vector id {value!r}") from None
    h = raw.hex()
    uuid = f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    name = f"deletion_vector_{uuid}.bin"
    return safe_relpath(f"{prefix}/{name}" if prefix else name, table=table, where=where)


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


@dataclass
class FileRef:
    path: str
    size: int | None
    kind: str  # "data" | "dv" | "cdc"


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


# --- checkpoints --------------------------------------------------------------------------


def _checkpoint_rows(
    path: Path, wanted: tuple[str, ...] = ("add", "sidecar", "metaData")
) -> list[dict[str, Any]]:
    """add / sidecar / metaData actions (or only `wanted`) of one checkpoint file (JSON or Parquet)."""
    if path.suffix == ".json":
        return parse_commit_bytes(path.read_bytes(), where=str(path))
    try:
        schema = pq.read_schema(path)
        cols = [c for c in wanted if c in schema.names]
        if not cols:
            return []  # e.g. a V1 checkpoint asked for sidecars: the footer was enough
        tbl = pq.read_table(path, columns=cols)
    except Exception as e:  # pyarrow raises many types for a broken file
        raise TableFormatError(f"{path}: unreadable checkpoint ({e})") from None
    rows: list[dict[str, Any]] = []
    for col in cols:
        for value in tbl.column(col).to_pylist():
            if value is not None:
                rows.append({col: value})
                check_action(rows[-1], where=str(path))
    return rows


@dataclass
class LiveFiles:
    """Replay state: live data files, and the deletion-vector file each one carries."""

    data: dict[str, FileRef] = field(default_factory=dict)
    dv_of: dict[str, str] = field(default_factory=dict)

    def apply(self, actions: list[dict[str, Any]], *, table: str, where: str) -> None:
        for a in actions:
            if "remove" in a:
                p = data_path(a["remove"]["path"], table=table, where=where)
                self.data.pop(p, None)
                self.dv_of.pop(p, None)
            elif "add" in a:
                add = a["add"]
                p = data_path(add["path"], table=table, where=where)
                self.data[p] = FileRef(p, add.get("size"), "data")
                dv = deletion_vector_path(add.get("deletionVector"), table=table, where=where)
                if dv:
                    self.dv_of[p] = dv
                else:
                    self.dv_of.pop(p, None)

    def files(self) -> dict[str, FileRef]:
        out = dict(self.data)
        for dv in self.dv_of.values():
            out[dv] = FileRef(dv, None, "dv")
        return out


def checkpoint_state(
    table_dir: Path, ckpt: Checkpoint, table: str
) -> tuple[LiveFiles, list[str], str | None]:
    """Live files, sidecar file names and table id at a checkpoint."""
    live = LiveFiles()
    sidecars: list[str] = []
    tid: str | None = None
    pending = [table_dir / f.name for f in ckpt.files]
    while pending:
        path = pending.pop()
        rows = _checkpoint_rows(path)
        for r in rows:
            if "sidecar" in r:
                rel = _sidecar_relpath(r, table=table, where=str(path))
                sidecars.append(rel)
                pending.append(table_dir / rel)
            elif "metaData" in r:
                tid = str(r["metaData"].get("id"))
        # Checkpoints hold only live adds (and tombstones we skip): apply adds only.
        live.apply([r for r in rows if "add" in r], table=table, where=str(path))
    return live, sidecars, tid


def _sidecar_relpath(row: dict[str, Any], *, table: str, where: str) -> str:
    name = safe_relpath(unquote(row["sidecar"]["path"]), table=table, where=where)
    return f"{LOG_DIR}/{SIDECAR_DIR}/{name}"


def checkpoint_sidecars(table_dir: Path, ckpt: Checkpoint, table: str) -> list[str]:
    """Sidecar files (table-relative) a checkpoint references, reading only what that needs.

    Not only UUID-named checkpoints: the Delta protocol lets a *classic-named*
    `<v>.checkpoint.parquet` follow the V2 spec too, sidecars included, so the file name does
    not tell. Multi-part checkpoints are always V1 spec (no sidecars). A Parquet checkpoint
    without a `sidecar` column costs one footer read.
    """
    if ckpt.kind == "multipart":
        return []
    out: list[str] = []
    for f in ckpt.files:
        path = table_dir / f.name
        for r in _checkpoint_rows(path, wanted=("sidecar",)):
            if "sidecar" in r:
                out.append(_sidecar_relpath(r, table=table, where=str(path)))
    return out


@dataclass
class Snapshot:
    """The files a version needs: data/DV files and the log files to read it."""

    version: int
    data_files: dict[str, FileRef]
    checkpoint: Checkpoint | None
    sidecars: list[str]
    table_id: str | None


def snapshot(table_dir: Path, version: int, listing: LogListing, table: str) -> Snapshot:
    """Replay the log up to `version`: newest checkpoint at or below it, then commits."""
    ckpt = listing.newest_checkpoint(version)
    if ckpt is not None:
        live, sidecars, tid = checkpoint_state(table_dir, ckpt, table)
        start = ckpt.version + 1
    else:
        live, sidecars, tid, start = LiveFiles(), [], None, 0
    for v in range(start, version + 1):
        if v not in listing.commits:
            raise TableFormatError(
                f"table {table}: commit {v} is missing from {LOG_DIR} and no checkpoint covers it"
            )
        actions = read_commit(table_dir, v)
        live.apply(actions, table=table, where=f"{table_dir}/{LOG_DIR}/{v:020d}.json")
        tid = table_id(actions) or tid
    return Snapshot(version, live.files(), ckpt, sidecars, tid)
