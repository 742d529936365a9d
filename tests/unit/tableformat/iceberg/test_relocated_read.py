"""End to end on real tables with delete files: relocate a table with drsync's delete-file
rewrites (plus the test-only manifest rewrite), rename the primary away, and DuckDB's iceberg
reader returns on the copy exactly the rows it returned on the primary (deletes applied); so
does pyiceberg where it can (it reads position deletes and deletion vectors, not equality
deletes)."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from tests.unit.tableformat.iceberg.relocate import (
    current_metadata,
    duck_iceberg,
    file_paths,
    iceberg_rows,
    materialize,
    relocate,
)

# (table, rows DuckDB reads at the current snapshot, delete files rewritten)
CASES = [
    ("spark_v2_position_deletes", 6592, 3),
    ("spark_equality_deletes", 2, 0),
    ("v3_deletion_vectors", 3, 1),
]


@pytest.mark.parametrize(("name", "rows", "rewritten"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("uri", [False, True], ids=["plain", "file-uri"])
def test_standby_reads_equal_with_primary_renamed_away(
        name: str, rows: int, rewritten: int, uri: bool, tmp_path: Path) -> None:
    primary = materialize(name, tmp_path / "primary" / name)
    con = duck_iceberg()
    expected = iceberg_rows(con, current_metadata(primary))
    assert len(expected) == rows
    standby = tmp_path / "standby" / name
    new = f"file://{standby}" if uri else str(standby)
    delete_files, _missing = relocate(primary, str(primary), standby, new)
    assert len(delete_files) == rewritten
    for f in delete_files:
        if f.suffix == ".parquet":
            assert file_paths(f) and all(p.startswith(new + "/data/") for p in file_paths(f))
    second = name != "spark_equality_deletes"  # pyiceberg 0.12 reads no equality deletes
    before = _pyiceberg_rows(current_metadata(primary)) if second else None
    os.rename(tmp_path / "primary", tmp_path / "primary-away")
    assert iceberg_rows(con, current_metadata(standby)) == expected
    if before is not None:  # the second reader agrees, on the copy alone
        after = _pyiceberg_rows(current_metadata(standby))
        assert after.num_rows == rows and after.equals(before)
    # nothing under the standby still names the primary
    for f in standby.rglob("*"):
        if f.is_file():
            assert str(primary).encode() not in f.read_bytes(), f


def _pyiceberg_rows(metadata: Path) -> pa.Table:
    from pyiceberg.table import StaticTable

    t = StaticTable.from_metadata(f"file://{metadata}").scan().to_arrow()
    return t.sort_by([(c, "ascending") for c in t.column_names])


def test_deletes_are_applied_on_the_standby(tmp_path: Path) -> None:
    """The copy's deletes take effect: without them DuckDB would return more rows."""
    primary = materialize("spark_v2_position_deletes", tmp_path / "p")
    standby = tmp_path / "s"
    relocate(primary, str(primary), standby, str(standby))
    os.rename(primary, tmp_path / "away")
    con = duck_iceberg()
    meta = str(current_metadata(standby))
    m = meta.replace("'", "''")
    row = con.execute("SELECT sum(record_count) FILTER (manifest_content = 'DATA'), "
                      "count(*) FILTER (content = 'POSITION_DELETES') "
                      f"FROM iceberg_metadata('{m}')").fetchone()
    assert row is not None
    data_rows, delete_files = row
    total = len(iceberg_rows(con, Path(meta)))
    assert delete_files == 3
    assert data_rows == 18044 and total == 6592  # the rows the rewritten files delete are gone
