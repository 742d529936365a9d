"""Delta checkpoints (classic, multi-part, V2 with sidecars) and the replay of the log to
the files a version needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow.parquet as pq

from drsync.errors import TableFormatError
from drsync.site.confine import safe_relpath
from drsync.tableformat.base import FileRef
from drsync.tableformat.delta.actions import check_action, parse_commit_bytes, read_commit, table_id
from drsync.tableformat.delta.log import LOG_DIR, SIDECAR_DIR, Checkpoint, LogListing
from drsync.tableformat.delta.paths import data_path, deletion_vector_path

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
