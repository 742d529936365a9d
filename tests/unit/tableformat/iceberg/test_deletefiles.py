"""deletefiles: Spark's position-delete Parquet files rewritten with the standby's paths (read
back equal by pyarrow), bounded memory on a large file, clear errors on damaged files, delete
entries' paths and bounds rebased; equality-delete files hold no paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drsync.errors import TableFormatError, UnsafePathError
from drsync.tableformat.iceberg.deletefiles import (
    FILE_PATH_FIELD_ID,
    rebase_delete_entry,
    rewrite_position_deletes,
)
from tests.unit.tableformat.iceberg.relocate import LOCATIONS, TEST_DATA, materialize

SPARK = TEST_DATA / "spark_v2_position_deletes"
SPARK_OLD = LOCATIONS["spark_v2_position_deletes"]
NEW = "/srv/standby/wh/db/t"


def _spark_delete_files() -> list[Path]:
    files = sorted((SPARK / "data").glob("*-deletes.parquet"))
    assert len(files) == 3
    return files


@pytest.mark.parametrize("src", _spark_delete_files(), ids=lambda p: p.name[:12])
def test_spark_position_deletes_read_back_equal(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out" / src.name
    size = rewrite_position_deletes(src, dst, SPARK_OLD, NEW)
    assert size == dst.stat().st_size
    assert size < 1.5 * src.stat().st_size  # encodings fit the columns (no dictionary on pos)
    before, after = pq.read_table(src), pq.read_table(dst)
    # same schema, field ids and key-value metadata (iceberg.schema, delete-type)
    assert after.schema.equals(before.schema, check_metadata=True)
    assert after.schema.metadata[b"delete-type"] == b"position"
    assert [f.metadata for f in after.schema] == [f.metadata for f in before.schema]
    # same rows in the same order, each path moved under NEW
    expected = [NEW + p[len(SPARK_OLD):] for p in before.column("file_path").to_pylist()]
    assert after.column("file_path").to_pylist() == expected
    assert after.column("pos").equals(before.column("pos"))
    # same row-group layout and compression
    mb, ma = pq.ParquetFile(src).metadata, pq.ParquetFile(dst).metadata
    assert [mb.row_group(i).num_rows for i in range(mb.num_row_groups)] == \
        [ma.row_group(i).num_rows for i in range(ma.num_row_groups)]
    assert ma.row_group(0).column(0).compression == mb.row_group(0).column(0).compression
    assert not [p for p in dst.parent.iterdir() if p.name != dst.name]  # no temp left


def test_rewrite_in_place_replaces_atomically(tmp_path: Path) -> None:
    src = _spark_delete_files()[0]
    f = tmp_path / src.name
    f.write_bytes(src.read_bytes())
    rewrite_position_deletes(f, f, SPARK_OLD, NEW)
    assert all(p.startswith(NEW + "/data/") for p in pq.read_table(f).column("file_path").to_pylist())
    assert [p.name for p in tmp_path.iterdir()] == [src.name]


def test_path_outside_the_table_is_refused_by_name(tmp_path: Path) -> None:
    src = tmp_path / "d-deletes.parquet"
    _write_deletes(src, ["/srv/primary/t/data/a.parquet", "/srv/primary/other/data/b.parquet"])
    with pytest.raises(UnsafePathError) as e:
        rewrite_position_deletes(src, tmp_path / "out.parquet", "/srv/primary/t", NEW)
    assert "d-deletes.parquet" in str(e.value) and "/srv/primary/other/data/b.parquet" in str(e.value)
    assert not (tmp_path / "out.parquet").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["d-deletes.parquet"]  # no temp left


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not_position_deletes"])
def test_damaged_parquet_is_a_clear_error(damage: str, tmp_path: Path) -> None:
    src = tmp_path / "bad-deletes.parquet"
    good = _spark_delete_files()[0].read_bytes()
    if damage == "truncated":
        src.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        src.write_bytes(b"PAR1" + b"\x00" * 100 + good[-8:])
    else:
        pq.write_table(pa.table({"id": [1, 2]}), src)
    with pytest.raises(TableFormatError) as e:
        rewrite_position_deletes(src, tmp_path / "out.parquet", SPARK_OLD, NEW)
    assert "bad-deletes.parquet" in str(e.value) and e.value.hint
    assert not (tmp_path / "out.parquet").exists()


def _write_deletes(path: Path, paths: list[str], *, row_group_size: int | None = None) -> None:
    schema = pa.schema([
        pa.field("file_path", pa.string(), nullable=False,
                 metadata={b"PARQUET:field_id": str(FILE_PATH_FIELD_ID).encode()}),
        pa.field("pos", pa.int64(), nullable=False,
                 metadata={b"PARQUET:field_id": b"2147483545"}),
    ], metadata={b"delete-type": b"position"})
    t = pa.table({"file_path": paths, "pos": list(range(len(paths)))}, schema=schema)
    pq.write_table(t, path, row_group_size=row_group_size)


_MEMORY_PROBE = r"""
import json, resource, sys
from pathlib import Path
import pyarrow as pa
from drsync.tableformat.iceberg.deletefiles import rewrite_position_deletes
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rewrite_position_deletes(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4])
print(json.dumps({"arrow_peak": pa.default_memory_pool().max_memory(),
                  "rss_growth_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}))
"""


def test_large_file_is_rewritten_in_bounded_memory(tmp_path: Path) -> None:
    """2M rows in 20 row groups: Arrow's peak stays near one row group's worth, far below the
    file's decoded size (the whole file is never held)."""
    old = "/srv/primary/warehouse/db/events"
    n, groups = 2_000_000, 20
    src = tmp_path / "big-deletes.parquet"
    per = n // groups
    schema = pa.schema([
        pa.field("file_path", pa.string(), nullable=False,
                 metadata={b"PARQUET:field_id": str(FILE_PATH_FIELD_ID).encode()}),
        pa.field("pos", pa.int64(), nullable=False, metadata={b"PARQUET:field_id": b"2147483545"}),
    ])
    with pq.ParquetWriter(src, schema) as w:
        for g in range(groups):
            names = [f"{old}/data/part-{g:03d}-{i:04d}-0123456789abcdef0123456789abcdef.parquet"
                     for i in range(100)]
            w.write_table(pa.table({
                "file_path": pa.array(names).take(pa.array([i // (per // 100) for i in range(per)])),
                "pos": pa.array(range(g * per, (g + 1) * per), pa.int64())}, schema=schema))
    decoded = pq.read_table(src).nbytes
    dst = tmp_path / "out.parquet"
    p = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(src), str(dst), old, NEW],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    peak = json.loads(p.stdout)["arrow_peak"]
    print(f"arrow peak {peak} B, file decoded {decoded} B")
    assert decoded > 150_000_000  # paths of ~90 bytes x 2M rows
    assert peak < decoded / 5, (peak, decoded)
    out = pq.ParquetFile(dst)
    assert out.metadata.num_rows == n and out.metadata.num_row_groups == groups
    last = out.read_row_group(groups - 1).column("file_path")[-1].as_py()
    assert last == f"{NEW}/data/part-{groups - 1:03d}-0099-0123456789abcdef0123456789abcdef.parquet"


# --- manifest entries of delete files ---------------------------------------------------

def _entry(old: str, lower: str, upper: str) -> dict[str, Any]:
    return {
        "content": 1,
        "file_path": old + "/data/d-deletes.parquet",
        "referenced_data_file": old + "/data/a.parquet",
        "lower_bounds": [{"key": FILE_PATH_FIELD_ID, "value": lower.encode()},
                         {"key": 2147483545, "value": b"\x00" * 8}],
        "upper_bounds": [{"key": FILE_PATH_FIELD_ID, "value": upper.encode()},
                         {"key": 2147483545, "value": b"\x07" + b"\x00" * 7}],
    }


def test_delete_entry_paths_and_bounds_are_rebased() -> None:
    old = "/srv/primary/t"
    df = _entry(old, old + "/data/a.parquet", old + "/data/b.parquet")
    rebase_delete_entry(df, old, NEW, where="manifest m1.avro")
    assert df["referenced_data_file"] == NEW + "/data/a.parquet"
    assert df["lower_bounds"][0] == {"key": FILE_PATH_FIELD_ID, "value": (NEW + "/data/a.parquet").encode()}
    assert df["upper_bounds"][0]["value"] == (NEW + "/data/b.parquet").encode()
    assert df["lower_bounds"][1]["value"] == b"\x00" * 8  # pos bounds untouched
    assert df["file_path"] == old + "/data/d-deletes.parquet"  # the manifest rewrite's job


def test_dict_shaped_bounds_are_rebased() -> None:
    old = "/srv/primary/t"
    df: dict[str, Any] = {"content": 1, "lower_bounds": {FILE_PATH_FIELD_ID: (old + "/data/a").encode()},
                          "upper_bounds": {FILE_PATH_FIELD_ID: (old + "/data/b").encode(), 1: b"x"}}
    rebase_delete_entry(df, old, NEW, where="m")
    assert df["lower_bounds"] == {FILE_PATH_FIELD_ID: (NEW + "/data/a").encode()}
    assert df["upper_bounds"] == {FILE_PATH_FIELD_ID: (NEW + "/data/b").encode(), 1: b"x"}


def test_truncated_bounds_are_dropped_as_a_pair() -> None:
    old = "/srv/primary/t"
    df = _entry(old, "/srv/prim", "/srv/prin")  # truncated to 9 characters, upper bumped
    rebase_delete_entry(df, old, NEW, where="m")
    assert [kv["key"] for kv in df["lower_bounds"]] == [2147483545]
    assert [kv["key"] for kv in df["upper_bounds"]] == [2147483545]


def test_entry_with_foreign_referenced_file_is_refused_by_name() -> None:
    old = "/srv/primary/t"
    df = _entry(old, old + "/data/a", old + "/data/b")
    df["referenced_data_file"] = "/srv/primary/other/data/a.parquet"
    with pytest.raises(UnsafePathError) as e:
        rebase_delete_entry(df, old, NEW, where="manifest m1.avro entry 3")
    assert "manifest m1.avro entry 3 (referenced_data_file)" in str(e.value)


def test_spark_manifest_bounds_are_whole_paths(tmp_path: Path) -> None:
    """The Spark table's delete entries carry file_path bounds; after materializing they are
    whole paths under the table (so they are rebased, not dropped)."""
    import fastavro

    table = materialize("spark_v2_position_deletes", tmp_path / "t")
    seen = 0
    for m in (table / "metadata").glob("*-m*.avro"):
        with open(m, "rb") as fo:
            records: list[Any] = list(fastavro.reader(fo))
        for entry in records:
            df = entry["data_file"]
            for kv in (df.get("lower_bounds") or []) if df["content"] == 1 else []:
                if kv["key"] == FILE_PATH_FIELD_ID:
                    assert kv["value"].decode().startswith(str(table) + "/data/")
                    seen += 1
    assert seen >= 2


def test_equality_deletes_hold_no_paths() -> None:
    """Equality-delete files hold values of the table's own columns (equality_ids), no
    file_path column and no path: they are copied as they are, no rewrite needed."""
    files = sorted((TEST_DATA / "spark_equality_deletes" / "data").glob("delete-*.parquet"))
    assert len(files) == 4
    for f in files:
        t = pq.read_table(f)
        ids = {int((fld.metadata or {}).get(b"PARQUET:field_id", b"0")) for fld in t.schema}
        assert FILE_PATH_FIELD_ID not in ids and "file_path" not in t.column_names
        for col in t.columns:
            if pa.types.is_string(col.type):
                assert not any(v and ("/" in v or "data/" in v) for v in col.to_pylist())
