"""Iceberg delete files that hold paths: position deletes (Parquet) and their manifest entries.

A position-delete file is a Parquet file of (`file_path`, `pos`) rows, optionally `row`,
naming rows of data files by their absolute path. On the standby those paths must name the
standby's copies, so the `file_path` column is rewritten; everything else stays as the writer
made it: row order, row-group boundaries, the Arrow/Parquet schema with its field ids, the
file's key-value metadata (`iceberg.schema` ...), the compression. The rewrite streams one row
group at a time, so memory is bounded by the largest row group, not by the file.

Equality-delete files hold column values of the table, no paths: they are copied as they are.

In a manifest, a delete file's entry carries paths too: `referenced_data_file` (the one data
file a delete file or deletion vector applies to) and the lower/upper bounds of the `file_path`
column (field id 2147483546), which are UTF-8 paths. `rebase_delete_entry` rebases them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from drsync.errors import TableFormatError
from drsync.fsutil import atomic_writer
from drsync.tableformat.iceberg.prefix import rebase_path

FILE_PATH_FIELD_ID = 2147483546
POS_FIELD_ID = 2147483545
_HINT_CORRUPT = ("the primary's copy of this file is damaged or not an Iceberg position-delete "
                 "file; repair the table on the primary (rewrite its delete files), then retry")


def _field_id(field: pa.Field) -> int | None:
    meta = field.metadata or {}
    raw = meta.get(b"PARQUET:field_id")
    return int(raw) if raw is not None else None


def _file_path_index(schema: pa.Schema, src: Path) -> int:
    for i, field in enumerate(schema):
        if _field_id(field) == FILE_PATH_FIELD_ID or (
                field.name == "file_path" and _field_id(field) is None):
            if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
                break
            return i
    raise TableFormatError(
        f"position-delete file {src}: no string column 'file_path' (field id "
        f"{FILE_PATH_FIELD_ID}); it is not an Iceberg position-delete file", hint=_HINT_CORRUPT)


def _rebased_column(col: pa.ChunkedArray | pa.Array, target: pa.DataType,
                    rebase: Callable[[str], str]) -> pa.Array:
    """The file_path column with every path rebased; each distinct path is rebased once."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if not pa.types.is_dictionary(col.type):
        col = col.dictionary_encode()
    dictionary = col.dictionary.to_pylist()
    mapped = pa.array([None if p is None else rebase(p) for p in dictionary], type=target)
    return pa.DictionaryArray.from_arrays(col.indices, mapped).cast(target)


def rewrite_position_deletes(src: Path, dst: Path, old: str, new: str) -> int:
    """Copy the position-delete file `src` to `dst` with `file_path` rebased from the table
    location `old` to `new`; `dst` appears complete or not at all. Returns its size in bytes."""
    where = f"position-delete file {src.name}"
    try:
        pf = pq.ParquetFile(src)
        arrow_schema = pf.schema_arrow
        meta = pf.metadata
    except (pa.ArrowException, OSError) as e:
        raise TableFormatError(f"position-delete file {src}: not a readable Parquet file ({e})",
                               hint=_HINT_CORRUPT) from e
    idx = _file_path_index(arrow_schema, src)
    name = arrow_schema.field(idx).name
    target = arrow_schema.field(idx).type
    compression = "snappy"
    if meta.num_row_groups and meta.num_columns:
        compression = meta.row_group(0).column(0).compression.lower()
        if compression == "uncompressed":
            compression = "none"
    try:  # the paths come dictionary-decoded per row group: each distinct one is rebased once
        reader = pq.ParquetFile(src, read_dictionary=[name])
    except (pa.ArrowException, OSError) as e:
        raise TableFormatError(f"position-delete file {src}: not a readable Parquet file ({e})",
                               hint=_HINT_CORRUPT) from e
    cache: dict[str, str] = {}

    def rebase(p: str) -> str:
        out = cache.get(p)
        if out is None:
            out = cache[p] = rebase_path(p, old, new, where=where)
        return out

    with atomic_writer(dst, crash="iceberg.position_deletes.written") as f:
        # dictionary for the few distinct paths only; positions are unique, a dictionary
        # there doubles their size (Spark leaves it off too)
        writer = pq.ParquetWriter(f, arrow_schema, compression=compression,
                                  version=_parquet_version(meta), use_dictionary=[name])
        try:
            for rg in range(meta.num_row_groups):
                try:
                    batch = reader.read_row_group(rg)
                except (pa.ArrowException, OSError) as e:
                    raise TableFormatError(
                        f"position-delete file {src}: row group {rg} is unreadable ({e})",
                        hint=_HINT_CORRUPT) from e
                col = _rebased_column(batch.column(idx), target, rebase)
                batch = batch.set_column(idx, arrow_schema.field(idx), col)
                writer.write_table(batch.cast(arrow_schema), row_group_size=max(1, batch.num_rows))
        finally:
            writer.close()
    return dst.stat().st_size


def _parquet_version(meta: pq.FileMetaData) -> str:
    # keep the writer's logical-type vocabulary (Spark writes format 1.0 files)
    return "1.0" if str(meta.format_version) == "1.0" else "2.6"


def _rebase_bound(value: Any, old: str, new: str, where: str) -> bytes | None:
    """A file_path bound rebased; None if it is a truncated prefix (not a whole path)."""
    raw = bytes(value) if not isinstance(value, bytes) else value
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TableFormatError(f"{where}: a file_path bound is not UTF-8 ({e})",
                               hint=_HINT_CORRUPT) from e
    if len(text) <= len(old.rstrip("/")):
        # a bound no longer than the location is a truncated one (Iceberg truncates bounds and
        # bumps an upper bound's last character): not a path, cannot be rebased; dropping it
        # is always safe (readers just prune less)
        return None
    return rebase_path(text, old, new, where=f"{where} (file_path bound)").encode("utf-8")


def _rebase_bounds(bounds: Any, old: str, new: str, where: str) -> tuple[Any, bool]:
    """(bounds with the file_path entry rebased, whether a truncated one was dropped)."""
    if not bounds:
        return bounds, False
    if isinstance(bounds, dict):  # {field_id: bytes}
        out_d = dict(bounds)
        if FILE_PATH_FIELD_ID in out_d:
            v = _rebase_bound(out_d[FILE_PATH_FIELD_ID], old, new, where)
            if v is None:
                del out_d[FILE_PATH_FIELD_ID]
                return out_d, True
            out_d[FILE_PATH_FIELD_ID] = v
        return out_d, False
    out_l: list[Any] = []  # Avro form: [{"key": field_id, "value": bytes}, ...]
    dropped = False
    for kv in bounds:
        if kv.get("key") == FILE_PATH_FIELD_ID:
            v = _rebase_bound(kv["value"], old, new, where)
            if v is None:
                dropped = True
                continue
            kv = {**kv, "value": v}
        out_l.append(kv)
    return out_l, dropped


def _drop_bound(bounds: Any) -> Any:
    if isinstance(bounds, dict):
        return {k: v for k, v in bounds.items() if k != FILE_PATH_FIELD_ID}
    return [kv for kv in bounds if kv.get("key") != FILE_PATH_FIELD_ID]


def rebase_delete_entry(data_file: dict[str, Any], old: str, new: str, *, where: str) -> None:
    """Rebase the paths of a delete file's `data_file` record of a manifest entry, in place:
    `referenced_data_file` and the file_path column's lower/upper bounds. (`file_path` of the
    delete file itself is rebased with every other entry's by the manifest rewrite.)"""
    ref = data_file.get("referenced_data_file")
    if ref is not None:
        data_file["referenced_data_file"] = rebase_path(
            ref, old, new, where=f"{where} (referenced_data_file)")
    lower, drop_l = _rebase_bounds(data_file.get("lower_bounds"), old, new, where)
    upper, drop_u = _rebase_bounds(data_file.get("upper_bounds"), old, new, where)
    if drop_l or drop_u:  # keep the pair consistent: both or neither
        lower = _drop_bound(lower) if lower else lower
        upper = _drop_bound(upper) if upper else upper
    if "lower_bounds" in data_file:
        data_file["lower_bounds"] = lower
    if "upper_bounds" in data_file:
        data_file["upper_bounds"] = upper
