"""Iceberg tables with delete files, written by other engines, replicated through drsync
(backup + restore, the real CLI) and read on the standby with the primary renamed away, at
every snapshot, by DuckDB and by pyiceberg (each must read the standby as it reads the
primary): Spark's position deletes (paths inside Parquet), Spark's equality deletes (no
paths), v3 deletion vectors (paths in the Puffin footer) written by Spark + Iceberg 1.8, by
Trino 480 (with zstd-compressed Puffin statistics files) and assembled by duckdb-iceberg;
position deletes by Trino 476 and by Spark 3.5.1 with file granularity (referenced_data_file
in the manifests). All tables travel in one set (one backup and restore for all, to keep the
test quick); a round that adds nothing and `verify --deep` then agree."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pyiceberg.table import StaticTable

from drsync.tableformat.iceberg.puffin import read_footer
from tests.helpers import Sites, drsync
from tests.unit.tableformat.iceberg.relocate import (
    current_metadata,
    duck_iceberg,
    iceberg_rows,
    materialize,
)

# table -> rows at its current snapshot (DuckDB)
CASES = {"spark_v2_position_deletes": 6592, "spark_file_position_deletes": 10, "trino_position_deletes": 10,
         "spark_equality_deletes": 2, "v3_deletion_vectors": 3, "spark_v3_deletion_vectors": 5,
         "trino_v3_deletion_vectors": 8}


def _round(sites: Sites) -> None:
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)


def _rows(table: Path) -> list[tuple[Any, ...]]:
    return iceberg_rows(duck_iceberg(), current_metadata(table))


def _every_snapshot(table: Path) -> dict[int, tuple[Any, Any]]:
    """snapshot id -> (DuckDB's rows, pyiceberg's rows), all values as text; a reader that
    cannot read a snapshot gives its error's type (pyiceberg reads no equality deletes; one
    snapshot of the Spark equality-delete source lacks its manifest list)."""
    meta = current_metadata(table)
    con = duck_iceberg()
    q = str(meta).replace("'", "''")
    out: dict[int, tuple[Any, Any]] = {}
    for snap in StaticTable.from_metadata(str(meta)).metadata.snapshots:
        sid = snap.snapshot_id
        try:
            duck: Any = sorted(con.execute(f"SELECT COLUMNS(*)::VARCHAR FROM iceberg_scan('{q}', "
                                           f"snapshot_from_id={sid})").fetchall(), key=repr)
        except Exception as e:  # the type is compared with the primary's
            duck = type(e).__name__
        try:
            arrow = StaticTable.from_metadata(str(meta)).scan(snapshot_id=sid).to_arrow()
            py: Any = sorted((tuple(str(v) for v in r.values()) for r in arrow.to_pylist()), key=repr)
        except Exception as e:
            py = type(e).__name__
        out[sid] = (duck, py)
    return out


def _names_only_the_standby(sites: Sites, dst: Path) -> None:
    """Nothing in the standby's table names the primary: not the metadata, not the Parquet
    delete files' file_path column, not the Puffin footers."""
    meta = json.loads(current_metadata(dst).read_bytes())
    assert meta["location"] == str(dst)
    for f in dst.rglob("*"):
        if f.is_file():
            assert str(sites.primary).encode() not in f.read_bytes(), f
    for f in dst.rglob("*.parquet"):
        if "file_path" in pq.read_schema(f).names:  # a position-delete file (Trino names none -deletes)
            paths = set(pq.read_table(f, columns=["file_path"]).column(0).to_pylist())
            assert paths and all(p.startswith(str(dst) + "/data/") for p in paths), f
    for f in dst.rglob("*.puffin"):
        footer, _ = read_footer(f)
        assert all(b["properties"]["referenced-data-file"].startswith(str(dst) + "/data/")
                   for b in footer["blobs"]), f


def test_delete_tables_replicated_read_without_the_primary(sites: Sites) -> None:
    expected: dict[str, Any] = {}
    for name, rows in CASES.items():
        src = materialize(name, sites.primary / "db" / "s" / name)
        current, every = _rows(src), _every_snapshot(src)
        assert len(current) == rows, name
        assert any(isinstance(d, list) and isinstance(p, list) for d, p in every.values()), name
        expected[name] = (current, every)
    _round(sites)
    away = sites.primary.with_name("warehouse.away")
    os.rename(sites.primary, away)
    try:
        for name, (current, every) in expected.items():
            dst = sites.standby / "db" / "s" / name
            assert _rows(dst) == current, name
            assert _every_snapshot(dst) == every, name
    finally:
        os.rename(away, sites.primary)
    for name in CASES:
        _names_only_the_standby(sites, sites.standby / "db" / "s" / name)
    _round(sites)  # nothing new: the standby stays as it is
    for name, (current, _) in expected.items():
        assert _rows(sites.standby / "db" / "s" / name) == current, name
    v = drsync("verify", "-c", str(sites.config), "--deep")
    assert v.returncode == 0, v.stdout + v.stderr
    assert f"{len(CASES)} of {len(CASES)} table(s) equal" in v.stdout, v.stdout
