"""Test-only: copy an Iceberg directory table to another location with every path rebased.

Uses drsync's delete-file functions for what they own (position-delete Parquet files, Puffin
deletion vectors, delete entries' paths) plus a minimal manifest / manifest-list / metadata
JSON rewrite with fastavro. The real manifest rewrite is the Iceberg TableFormat's (branch
`iceberg`); this one exists so the delete-file rewrites can be read back by DuckDB's iceberg
reader on a relocated table.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pyarrow.parquet as pq

from drsync.fsutil import atomic_write_bytes
from drsync.tableformat.iceberg.deletefiles import rebase_delete_entry, rewrite_position_deletes
from drsync.tableformat.iceberg.prefix import rebase_path, relative_part
from drsync.tableformat.iceberg.puffin import rewrite_deletion_vectors

TEST_DATA = Path(__file__).resolve().parents[3] / "data" / "iceberg"
# the location each test table was written at (relative: duckdb-iceberg's test data)
LOCATIONS = {
    "spark_v2_position_deletes": "data/iceberg/generated_spec2_0_001/pyspark_iceberg_table",
    "spark_equality_deletes": "data/persistent/equality_deletes/warehouse/mydb/mytable",
    "v3_deletion_vectors":
        "data/persistent/multi_blob_deletion_vectors/warehouse/default/multi_blob_deletion_vectors",
    # iceberg-cxx's test data: Spark 3.5.2 + Iceberg 1.8.0 (relative), Trino 480 (object store)
    "spark_v3_deletion_vectors": "warehouse/deletion_vector/deletion_vector_sample",
    "trino_v3_deletion_vectors": "s3a://warehouse/deletion_vectors",
    "trino_position_deletes": "s3a://warehouse/dangling_deletes",  # Trino 476
    "spark_file_position_deletes": "s3://warehouse/prod/db/refdeletes3",  # Spark 3.5.1
}


class _Relocation:
    def __init__(self, root: Path, old: str, new: str) -> None:
        self.root, self.old, self.new = root, old, new
        self.sizes: dict[Path, int] = {}  # files rewritten already -> new size
        self.delete_files: list[Path] = []
        self.missing: set[str] = set()

    def local(self, path: str) -> Path:
        return self.root / relative_part(path, self.old, where="test relocation")

    def rebase(self, path: str, where: str) -> str:
        return rebase_path(path, self.old, self.new, where=where)

    def _rewrite_avro(self, path: Path, fix: Any) -> int:
        if path in self.sizes:
            return self.sizes[path]
        with open(path, "rb") as fo:
            reader = fastavro.reader(fo)
            schema = reader.writer_schema
            codec = reader.codec
            meta = {k: v for k, v in reader.metadata.items() if not k.startswith("avro.")}
            records = [fix(r) for r in reader]
        out = _avro_bytes(schema, records, codec, meta)
        atomic_write_bytes(path, out)
        self.sizes[path] = len(out)
        return len(out)

    def delete_file(self, df: dict[str, Any]) -> None:
        local = self.local(df["file_path"])
        if local not in self.sizes:
            if str(df.get("file_format", "")).upper() == "PUFFIN":
                size = rewrite_deletion_vectors(local, local, self.old, self.new)
            else:
                size = rewrite_position_deletes(local, local, self.old, self.new)
            self.sizes[local] = size
            self.delete_files.append(local)
        df["file_size_in_bytes"] = self.sizes[local]
        rebase_delete_entry(df, self.old, self.new, where=f"manifest entry of {local.name}")

    def manifest(self, path: Path) -> int:
        def fix(entry: dict[str, Any]) -> dict[str, Any]:
            df = entry["data_file"]
            if df.get("content", 0) == 1:
                self.delete_file(df)
            df["file_path"] = self.rebase(df["file_path"], f"manifest {path.name}")
            return entry
        return self._rewrite_avro(path, fix)

    def manifest_list(self, path: Path) -> int:
        def fix(rec: dict[str, Any]) -> dict[str, Any]:
            rec["manifest_length"] = self.manifest(self.local(rec["manifest_path"]))
            rec["manifest_path"] = self.rebase(rec["manifest_path"], f"manifest list {path.name}")
            return rec
        return self._rewrite_avro(path, fix)

    def metadata(self, path: Path) -> None:
        doc = json.loads(path.read_text())
        doc["location"] = self.rebase(doc["location"], path.name)
        for snap in doc.get("snapshots", []):
            local = self.local(snap["manifest-list"])
            if local.exists():
                self.manifest_list(local)
            else:  # absent from the source too (duckdb-iceberg's data lacks one): rebase only
                self.missing.add(local.name)
            snap["manifest-list"] = self.rebase(snap["manifest-list"], path.name)
        for entry in doc.get("metadata-log", []):
            entry["metadata-file"] = self.rebase(entry["metadata-file"], path.name)
        for stats in doc.get("statistics", []) + doc.get("partition-statistics", []):
            stats["statistics-path"] = self.rebase(stats["statistics-path"], path.name)
        atomic_write_bytes(path, json.dumps(doc, indent=2).encode())


def _avro_bytes(schema: Any, records: list[dict[str, Any]], codec: str,
                meta: dict[str, str]) -> bytes:
    import io

    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(schema), records, codec=codec, metadata=meta)
    return buf.getvalue()


def relocate(src: Path, old: str, dst: Path, new: str) -> tuple[list[Path], set[str]]:
    """Copy the table at `src` (written at location `old`) to `dst` as location `new`;
    returns the delete files rewritten (Parquet and Puffin, under `dst`) and the names of
    manifest lists that metadata names but the source lacks."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.crc"))
    r = _Relocation(dst, old, new)
    metas = sorted((dst / "metadata").glob("*.metadata.json"))
    for meta in metas:
        r.metadata(meta)
    hint = dst / "metadata" / "version-hint.text"
    if not hint.exists():  # a table of a catalog (Trino's): point a hint at its newest metadata
        newest = max(metas, key=lambda m: json.loads(m.read_text())["last-updated-ms"])
        atomic_write_bytes(hint, newest.name.removesuffix(".metadata.json").encode())
    return r.delete_files, r.missing


def materialize(name: str, dst: Path) -> Path:
    """A test table from tests/data/iceberg at `dst`, its paths made absolute to `dst`."""
    relocate(TEST_DATA / name, LOCATIONS[name], dst, str(dst))
    return dst


def current_metadata(table: Path) -> Path:
    hint = (table / "metadata" / "version-hint.text").read_text().strip()
    for name in (f"v{hint}.metadata.json", f"{hint}.metadata.json"):
        if (table / "metadata" / name).exists():
            return table / "metadata" / name
    raise AssertionError(f"no metadata for version hint {hint!r} in {table}")


def file_paths(path: Path) -> set[str]:
    """The distinct file_path values of a position-delete file (read by pyarrow)."""
    return set(pq.read_table(path, columns=["file_path"]).column(0).to_pylist())


def duck_iceberg() -> Any:
    """A DuckDB connection with the avro and iceberg extensions, loaded from their wheels."""
    import os

    import duckdb
    import duckdb_extension_avro
    import duckdb_extension_iceberg

    con = duckdb.connect()
    for module, name in ((duckdb_extension_avro, "avro"), (duckdb_extension_iceberg, "iceberg")):
        root = Path(os.path.dirname(module.__file__)) / "extensions"
        con.execute(f"LOAD '{sorted(root.glob(f'*/{name}.duckdb_extension'))[-1]}'")
    return con


def iceberg_rows(con: Any, metadata: Path) -> list[tuple[Any, ...]]:
    """All rows of the table at this metadata JSON, sorted, read by DuckDB."""
    p = str(metadata).replace("'", "''")
    return sorted(con.execute(f"SELECT COLUMNS(*)::VARCHAR FROM iceberg_scan('{p}')").fetchall(), key=repr)
