"""Iceberg tables for tests: written by pyiceberg, read back by DuckDB's iceberg extension and
by pyiceberg (independent of drsync's own metadata code).

Directory tables: pyiceberg writes through a scratch SQL catalog kept OUTSIDE the warehouse,
and after every commit `metadata/version-hint.text` is pointed at the new metadata file
(temp + rename), as Hadoop-style catalogs do; readers find the table by that pointer alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import duckdb_extension_avro
import duckdb_extension_iceberg
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import StaticTable, Table

from tests.helpers import Sites, drsync

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def catalog(base: Path, name: str = "scratch") -> SqlCatalog:
    base.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(name, uri=f"sqlite:///{base}/{name}.db", warehouse=f"file://{base}/wh")


def set_hint(t: Table) -> None:
    """Point the directory table's version-hint.text at its current metadata (temp + rename)."""
    loc = t.metadata_location.removeprefix("file://")
    meta_dir = Path(loc).parent
    stem = Path(loc).name.removesuffix(".metadata.json")
    tmp = meta_dir / ".version-hint.text.tmp"
    tmp.write_text(stem)
    os.replace(tmp, meta_dir / "version-hint.text")


def create_dir_table(cat: SqlCatalog, ident: str, location: Path, rows: int = 3,
                     schema: pa.Schema = SCHEMA) -> Table:
    ns = ident.split(".")[0]
    if ns not in [n[0] for n in cat.list_namespaces()]:
        cat.create_namespace(ns)
    t = cat.create_table(ident, schema=schema, location=str(location))
    if rows:
        t.append(batch(0, rows))
    set_hint(t)
    return t


@dataclass
class IceTable:
    """Directory table `db.s.<name>` written by pyiceberg on the primary (its scratch catalog
    outside the warehouse); `dst` is where the standby holds it."""

    table: Table
    src: Path
    dst: Path


def ice_table(sites: Sites, name: str = "ice", rows: int = 3) -> IceTable:
    src, dst = sites.primary / "db" / "s" / name, sites.standby / "db" / "s" / name
    return IceTable(create_dir_table(catalog(sites.base / "scratch-catalog"), f"db.{name}", src, rows),
                    src, dst)


def backup_restore(config: Path) -> None:
    """One round: backup, then restore (both must succeed)."""
    drsync("backup", "-c", str(config), check=True)
    drsync("restore", "-c", str(config), check=True)


def batch(start: int, n: int) -> pa.Table:
    ids = list(range(start, start + n))
    return pa.table({"id": ids, "name": [f"row{i}" for i in ids]}, schema=SCHEMA)


def commit(t: Table, op: Any) -> None:
    """Run one pyiceberg write (a callable taking the table), then move the pointer."""
    op(t)
    t.refresh()
    set_hint(t)


def iceduck() -> Any:
    con = duckdb.connect()
    for mod, name in ((duckdb_extension_avro, "avro"), (duckdb_extension_iceberg, "iceberg")):
        root = Path(os.path.dirname(str(mod.__file__))) / "extensions"
        con.execute(f"LOAD '{sorted(root.glob(f'*/{name}.duckdb_extension'))[-1]}'")
    return con


def current_metadata(table_dir: Path) -> Path:
    hint = (table_dir / "metadata" / "version-hint.text").read_text().strip()
    return table_dir / "metadata" / f"{hint}.metadata.json"


def duck_rows(con: Any, table_dir: Path, snapshot_id: int | None = None) -> list[tuple[Any, ...]]:
    """All rows, sorted, by DuckDB from the directory table (through its version-hint)."""
    p = str(table_dir).replace("'", "''")
    opt = f", snapshot_from_id={int(snapshot_id)}" if snapshot_id is not None else ""
    return sorted(con.execute(f"SELECT * FROM iceberg_scan('{p}'{opt})").fetchall(), key=repr)


def py_rows(table_dir: Path, snapshot_id: int | None = None) -> list[tuple[Any, ...]]:
    """All rows, sorted, by pyiceberg from the directory table's current metadata."""
    t = StaticTable.from_metadata(str(current_metadata(table_dir)))
    arrow = t.scan(snapshot_id=snapshot_id).to_arrow()
    return sorted((tuple(r.values()) for r in arrow.to_pylist()), key=repr)


def snapshot_ids(table_dir: Path) -> list[int]:
    t = StaticTable.from_metadata(str(current_metadata(table_dir)))
    return [s.snapshot_id for s in t.metadata.snapshots]
