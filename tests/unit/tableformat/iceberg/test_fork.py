"""An Iceberg fork (drills): at its final location, never the standby's or the temp dir's;
data linked (copied with copy=True), metadata files its own; a version whose metadata is gone
refused by name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from drsync.errors import DrillError
from drsync.tableformat.iceberg.fork import fork_table
from drsync.tableformat.iceberg.metadata import metadata_version
from tests.iceberg_helpers import (
    batch,
    catalog,
    commit,
    create_dir_table,
    current_metadata,
    duck_rows,
    iceduck,
)


def _table(tmp: Path) -> tuple[Path, int]:
    src = tmp / "standby" / "db" / "s" / "t"
    t = create_dir_table(catalog(tmp / "cat"), "db.t", src)
    commit(t, lambda t: t.append(batch(10, 2)))
    v = metadata_version(current_metadata(src).name)
    assert v is not None
    return src, v


@pytest.mark.parametrize("copy", [False, True])
def test_fork_names_its_final_location_and_shares_no_metadata_file(tmp_path: Path, copy: bool) -> None:
    src, v = _table(tmp_path)
    build, final = tmp_path / "tmp-build" / "t", tmp_path / "drill" / "t"
    out = fork_table(src, build, "db.s.t", v, "k", copy=copy, final=final)
    meta = current_metadata(build)
    assert json.loads(meta.read_bytes())["location"] == str(final)
    assert str(src) not in meta.read_text() and str(build) not in meta.read_text()
    data = [p for p in build.rglob("*.parquet")]
    assert data and all((os.stat(p).st_nlink > 1) != copy for p in data)
    assert all(os.stat(p).st_nlink == 1 for p in (build / "metadata").iterdir())
    assert (out.copied_bytes > 0) == copy and (out.linked_bytes > 0) != copy
    os.makedirs(final.parent)
    os.rename(build, final)
    con = iceduck()
    assert duck_rows(con, final) == duck_rows(con, src)


def test_a_version_without_metadata_is_refused_by_name(tmp_path: Path) -> None:
    src, v = _table(tmp_path)
    with pytest.raises(DrillError, match=r"db\.s\.t.*no metadata file for version 99"):
        fork_table(src, tmp_path / "f", "db.s.t", 99, "k", copy=False)
    for p in (src / "metadata").glob(f"*{v - 1:05d}-*.metadata.json"):
        p.unlink()  # the standby keeps only its newest metadata JSON
    with pytest.raises(DrillError, match=f"no metadata file for version {v - 1}"):
        fork_table(src, tmp_path / "g", "db.s.t", v - 1, "k", copy=False)


@pytest.mark.parametrize("name", ["spark_v2_position_deletes", "spark_equality_deletes",
                                  "v3_deletion_vectors"])
def test_fork_of_tables_with_delete_files_reads_without_the_source(tmp_path: Path, name: str) -> None:
    """Position deletes and deletion vectors hold data-file paths: the fork's own rewritten
    copies, so the fork reads equal with the table it was forked from renamed away."""
    from tests.unit.tableformat.iceberg import relocate

    materialize, meta_of = relocate.materialize, relocate.current_metadata
    duck_iceberg, iceberg_rows = relocate.duck_iceberg, relocate.iceberg_rows

    src = materialize(name, tmp_path / "standby" / "db" / "s" / "t")
    expected = iceberg_rows(duck_iceberg(), meta_of(src))
    v = metadata_version(meta_of(src).name)
    assert v is not None
    final = tmp_path / "drill" / "t"
    fork_table(src, tmp_path / "build", "db.s.t", v, "k", copy=False, final=final)
    os.makedirs(final.parent)
    os.rename(tmp_path / "build", final)
    os.rename(tmp_path / "standby", tmp_path / "away")
    assert iceberg_rows(duck_iceberg(), meta_of(final)) == expected
