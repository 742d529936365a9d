"""On the standby: move a staged Iceberg table from the primary's location to its own.

Every path inside Iceberg metadata is absolute, so a copy read as shipped would read the
primary's files. Before a table's files are installed, the staged manifests, manifest lists
and metadata JSON are rewritten (each to a NEW file, temp + fsync + rename over the staged
name: a staged file is never changed in place), in dependency order: manifests; manifest
lists with each `manifest_length` the size of the rewritten manifest (this set's, or the one
installed by an earlier set); the metadata JSON; version-hint.text regenerated from the
metadata file's name (the standby trusts nothing it is sent). Avro files keep their schema,
codec, header metadata and sync marker, so a re-run writes the same bytes.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from drsync.errors import IntegrityError, TableFormatError
from drsync.fsutil import atomic_write_bytes
from drsync.tableformat.iceberg.deleterewrite import POSITION_DELETES, DeleteEntries
from drsync.tableformat.iceberg.metadata import (
    HINT,
    hint_text,
    local_path,
    new_location,
    parse_metadata,
    rebase,
    relpath,
)


def _write_new(staged: Path, data: bytes) -> int:
    # staging is rebuilt by any re-run: the rename need not survive a power cut (no dir fsync)
    atomic_write_bytes(staged, data, sync_dir=False)
    return len(data)


def rewrite_avro(staged: Path, fix: Any, *, table: str) -> int:
    """Rewrite one Avro file's records through `fix(record)`; the new size."""
    import fastavro

    try:
        with open(staged, "rb") as f:
            reader = fastavro.reader(f)
            header = reader._header
            schema = json.loads(header["meta"]["avro.schema"])
            codec = reader.codec
            meta = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in header["meta"].items()
                    if not k.startswith("avro.")}
            records = [fix(r) for r in reader]
    except (OSError, ValueError, EOFError, KeyError, TypeError) as e:
        raise IntegrityError(f"table {table}: staged {staged.name} is not a readable Avro file: "
                             f"{e}") from None
    out = io.BytesIO()
    parsed = fastavro.parse_schema(schema, _write_hint=False)
    fastavro.writer(out, parsed, records, codec=codec, metadata=meta, sync_marker=header["sync"])
    return _write_new(staged, out.getvalue())


def rewrite_table(staged_table: Path, files: Iterable[Any], final_dir: Path, installed_dir: Path,
                  *, table: str) -> None:
    """Rewrite the staged metadata of one table for `final_dir` (where readers will find it);
    `installed_dir` is where the table is being built (older manifests are read there)."""
    by_kind: dict[str, list[str]] = {}
    for f in files:
        by_kind.setdefault(f.kind, []).append(f.path)
    metas = by_kind.get("metadata", [])
    if not metas:
        if any(k in by_kind for k in ("manifest", "manifest_list", "hint")):
            raise IntegrityError(f"table {table}: the set ships Iceberg manifests but no metadata JSON")
        return
    if len(metas) != 1:
        raise IntegrityError(f"table {table}: the set ships {len(metas)} metadata JSON files, not one")
    meta_rel = metas[0]
    meta = parse_metadata((staged_table / meta_rel).read_bytes(), table=table, where=f"staged {meta_rel}")
    old = meta["location"]
    if local_path(old) is None:
        raise TableFormatError(f"table {table}: location {old!r} is not a local path")

    def move(uri: str, where: str) -> str:
        return rebase(uri, old, final_dir, table=table, where=where)

    deletes = DeleteEntries(staged_table, installed_dir, set(by_kind.get("delete", [])), old,
                            new_location(old, final_dir), table=table)
    sizes: dict[str, int] = {}
    for rel in by_kind.get("manifest", []):
        def fix_entry(e: dict[str, Any], rel: str = rel) -> dict[str, Any]:
            df = e["data_file"]
            if df.get("content") == POSITION_DELETES:
                d_rel = relpath(df["file_path"], old, table=table, where=f"manifest {rel}")
                deletes.fix(df, d_rel, where=f"manifest {rel}, entry for {d_rel}")
            df["file_path"] = move(df["file_path"], f"manifest {rel}")
            return e
        sizes[rel] = rewrite_avro(staged_table / rel, fix_entry, table=table)
    for rel in by_kind.get("manifest_list", []):
        def fix_list(e: dict[str, Any], rel: str = rel) -> dict[str, Any]:
            m_rel = relpath(e["manifest_path"], old, table=table, where=f"manifest list {rel}")
            e["manifest_path"] = move(e["manifest_path"], f"manifest list {rel}")
            size = sizes.get(m_rel)
            if size is None:
                try:
                    size = os.stat(installed_dir / m_rel).st_size
                except FileNotFoundError:
                    raise IntegrityError(f"table {table}: manifest list {rel} names {m_rel}, which is "
                                         "neither in the set nor on the standby") from None
            e["manifest_length"] = size
            return e
        rewrite_avro(staged_table / rel, fix_list, table=table)
    meta["location"] = new_location(old, final_dir)
    for snap in meta.get("snapshots") or []:
        if isinstance(snap.get("manifest-list"), str):
            snap["manifest-list"] = move(snap["manifest-list"], f"snapshot {snap.get('snapshot-id')}")
    for entry in meta.get("metadata-log") or []:
        entry["metadata-file"] = move(str(entry.get("metadata-file")), "metadata-log")
    for key in ("statistics", "partition-statistics"):
        for st in meta.get(key) or []:
            st["statistics-path"] = move(str(st.get("statistics-path")), key)
    _write_new(staged_table / meta_rel, json.dumps(meta, indent=2).encode())
    if "hint" in by_kind:
        if by_kind["hint"] != [HINT]:
            raise IntegrityError(f"table {table}: unexpected pointer files {by_kind['hint']}")
        _write_new(staged_table / HINT, hint_text(meta_rel).encode())
