"""Row-level reading with DuckDB's iceberg extension: the independent reader for verify --deep.

The extension (and the avro extension it reads manifests with) ship inside the
`duckdb-extension-iceberg` / `duckdb-extension-avro` wheels; they are loaded from there, as
this host may have no network to download them.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from drsync.errors import DrsyncError
from drsync.tableformat.iceberg.metadata import META_DIR, metadata_version, read_pointer


def _extension(module: str, name: str) -> Path:
    mod = importlib.import_module(module)
    root = Path(os.path.dirname(str(mod.__file__))) / "extensions"
    found = sorted(root.glob(f"*/{name}.duckdb_extension"))
    if not found:
        raise DrsyncError(f"no DuckDB {name} extension found under {root}",
                          hint=f"pip install {module.replace('_', '-')} matching your duckdb version")
    return found[-1]


def connect(threads: int | None = None) -> Any:
    import duckdb

    config: dict[str, Any] = {}
    if threads is not None:
        config["threads"] = threads
    con = duckdb.connect(config=config)
    for module, name in (("duckdb_extension_avro", "avro"), ("duckdb_extension_iceberg", "iceberg")):
        con.execute(f"LOAD '{_extension(module, name)}'")
    return con


def metadata_file(table_dir: Path, version: int | None) -> Path:
    """The metadata JSON of `version` (None: the one the pointer names)."""
    if version is None:
        return table_dir / read_pointer(table_dir)
    for p in sorted((table_dir / META_DIR).glob("*.metadata.json")):
        if metadata_version(p.name) == version:
            return p
    raise DrsyncError(f"{table_dir}: no metadata file for version {version}")


def _scan(table_dir: Path, version: int | None) -> str:
    path = str(metadata_file(table_dir, version)).replace("'", "''")
    return f"iceberg_scan('{path}')"


def table_checksum(con: Any, table_dir: Path, version: int | None = None) -> tuple[int, int]:
    scan = _scan(table_dir, version)
    row = con.execute(f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM {scan} t").fetchone()
    return int(row[0]), int(row[1])


def sample_rows(con: Any, table_dir: Path, version: int, limit: int) -> int:
    row = con.execute(f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM "
                      f"(SELECT * FROM {_scan(table_dir, version)} LIMIT {int(limit)}) t").fetchone()
    return int(row[0])
