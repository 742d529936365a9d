"""prefix.rebase_path: paths move from the primary's table location to the standby's; a path
that leaves the table is refused, naming where it was found."""

from __future__ import annotations

import pytest

from drsync.errors import UnsafePathError
from drsync.tableformat.iceberg.prefix import rebase_path, relative_part

OLD = "/srv/primary/wh/db/t"
NEW = "/srv/standby/wh/db/t"


@pytest.mark.parametrize("path", [
    "/srv/primary/wh/db/t/data/a.parquet",
    "file:/srv/primary/wh/db/t/data/a.parquet",
    "file:///srv/primary/wh/db/t/data/a.parquet",
    "file://localhost/srv/primary/wh/db/t/data/a.parquet",
])
def test_every_file_form_rebases(path: str) -> None:
    assert rebase_path(path, OLD, NEW, where="m.avro") == NEW + "/data/a.parquet"


@pytest.mark.parametrize("old", [OLD, OLD + "/", "file://" + OLD, "file:" + OLD])
def test_location_forms_match(old: str) -> None:
    assert rebase_path(OLD + "/metadata/v1.metadata.json", old, NEW, where="x") == \
        NEW + "/metadata/v1.metadata.json"


def test_result_takes_the_form_of_new() -> None:
    assert rebase_path(OLD + "/d/x", OLD, "file://" + NEW + "/", where="x") == \
        "file://" + NEW + "/d/x"


def test_the_location_itself() -> None:
    assert rebase_path(OLD, OLD, NEW, where="x") == NEW
    assert relative_part(OLD + "/", OLD, where="x") == ""


def test_s3_locations_compare_as_written() -> None:
    assert rebase_path("s3://b/t/data/x", "s3://b/t", "s3://c/t", where="x") == "s3://c/t/data/x"


@pytest.mark.parametrize("path", [
    "/srv/primary/wh/db/other/data/a.parquet",    # a sibling table
    "/srv/primary/wh/db/t2/data/a.parquet",       # same prefix, not a directory boundary
    "/srv/primary/wh/db/t/../t2/data/a.parquet",  # climbs out
    "/srv/primary/wh/db/t/data/./../../x",
    "file://otherhost/srv/primary/wh/db/t/data/a.parquet",
    "s3://bucket/srv/primary/wh/db/t/data/a.parquet",
    "data/a.parquet",                            # relative
])
def test_paths_leaving_the_table_are_refused_by_name(path: str) -> None:
    with pytest.raises(UnsafePathError) as e:
        rebase_path(path, OLD, NEW, where="manifest snap-1.avro (file_path)")
    msg = str(e.value)
    assert "manifest snap-1.avro (file_path)" in msg and path in msg and OLD in msg
    assert e.value.hint
