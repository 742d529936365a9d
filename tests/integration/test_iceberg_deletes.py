"""Iceberg tables with delete files, written by other engines, replicated through drsync
(backup + restore, the real CLI) and read on the standby with the primary renamed away, at
every snapshot, by DuckDB and by pyiceberg (each must read the standby as it reads the
primary): Spark's position deletes (paths inside Parquet), Spark's equality deletes (no
paths), v3 deletion vectors (paths in the Puffin footer) written by Spark + Iceberg 1.8, by
Trino 480 (with zstd-compressed Puffin statistics files) and assembled by duckdb-iceberg.
Then a round that adds nothing and `verify --deep` agree."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pyiceberg.table import StaticTable

from drsync.tableformat.iceberg.puffin import read_footer
from tests.helpers import Sites, drsync
from tests.unit.tableformat.iceberg.relocate import (
    current_metadata,
    duck_iceberg,
    iceberg_rows,
    materialize,
)

CASES = [("spark_v2_position_deletes", 6592), ("spark_equality_deletes", 2), ("v3_deletion_vectors", 3),
         ("spark_v3_deletion_vectors", 5), ("trino_v3_deletion_vectors", 8)]


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


@pytest.mark.parametrize(("name", "rows"), CASES, ids=[c[0] for c in CASES])
def test_delete_table_replicated_reads_without_the_primary(name: str, rows: int, sites: Sites) -> None:
    src = materialize(name, sites.primary / "db" / "s" / "ice")
    dst = sites.standby / "db" / "s" / "ice"
    expected = _rows(src)
    assert len(expected) == rows
    every = _every_snapshot(src)
    assert sum(isinstance(d, list) and isinstance(p, list) for d, p in every.values()) >= 1
    _round(sites)
    away = sites.primary.with_name("warehouse.away")
    os.rename(sites.primary, away)
    try:
        assert _rows(dst) == expected
        assert _every_snapshot(dst) == every
    finally:
        os.rename(away, sites.primary)
    meta = json.loads(current_metadata(dst).read_bytes())
    assert meta["location"] == str(dst)
    # nothing on the standby names the primary: not the Parquet delete files, not the Puffin
    for f in dst.rglob("*"):
        if f.is_file():
            assert str(sites.primary).encode() not in f.read_bytes(), f
    for f in dst.rglob("*-deletes.parquet"):
        paths = set(pq.read_table(f, columns=["file_path"]).column(0).to_pylist())
        assert paths and all(p.startswith(str(dst) + "/data/") for p in paths)
    for f in dst.rglob("*.puffin"):
        footer, _ = read_footer(f)
        assert all(b["properties"]["referenced-data-file"].startswith(str(dst) + "/data/")
                   for b in footer["blobs"])
    _round(sites)  # nothing new: the standby stays as it is
    assert _rows(dst) == expected
    v = drsync("verify", "-c", str(sites.config), "--deep")
    assert v.returncode == 0, v.stdout + v.stderr
    assert "1 of 1 table(s) equal" in v.stdout
