"""Iceberg metadata helpers: version numbers, the pointer, paths confined to the location."""

from __future__ import annotations

from pathlib import Path

import pytest

from drsync.errors import TableFormatError, UnsafePathError
from drsync.tableformat.iceberg.metadata import (
    hint_target,
    hint_text,
    metadata_version,
    parse_metadata,
    rebase,
    relpath,
)


def test_metadata_versions_of_both_naming_styles() -> None:
    assert metadata_version("metadata/v12.metadata.json") == 12
    assert metadata_version("00003-4a3ab7c1-fcdc.metadata.json") == 3
    assert metadata_version("metadata/snap-1-0-x.avro") is None
    assert metadata_version("metadata/version-hint.text") is None


def test_hint_round_trips_to_the_metadata_file() -> None:
    for rel in ("metadata/v7.metadata.json", "metadata/00002-ab-cd.metadata.json"):
        assert hint_target(hint_text(rel)) == rel
    assert hint_target("3\n") == "metadata/v3.metadata.json"
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(TableFormatError):
            hint_target(bad)


@pytest.mark.parametrize("loc", ["/wh/db/s/t", "file:///wh/db/s/t", "file:/wh/db/s/t", "/wh/db/s/t/"])
def test_paths_under_the_location_are_relative_and_rebased_in_their_own_style(loc: str) -> None:
    for uri, style in (("/wh/db/s/t/data/a.parquet", ""), ("file:///wh/db/s/t/data/a.parquet", "file://")):
        assert relpath(uri, loc, table="db.s.t", where="w") == "data/a.parquet"
        assert rebase(uri, loc, Path("/sb/db/s/t"), table="db.s.t", where="w") == \
            f"{style}/sb/db/s/t/data/a.parquet"


@pytest.mark.parametrize("uri", ["/wh/db/s/other/data/a.parquet", "/wh/db/s/t", "/wh/db/s/tt/a",
                                 "/wh/db/s/t/../u/a.parquet", "s3://bucket/wh/db/s/t/a.parquet",
                                 "/wh/db/s/t//a"])
def test_paths_leaving_the_location_are_refused_naming_the_table(uri: str) -> None:
    with pytest.raises(UnsafePathError, match=r"db\.s\.t"):
        relpath(uri, "/wh/db/s/t", table="db.s.t", where="manifest m.avro")


def test_a_location_off_the_local_file_system_is_refused() -> None:
    with pytest.raises(UnsafePathError, match="not a local path"):
        relpath("s3://b/t/a", "s3://b/t", table="db.s.t", where="w")


@pytest.mark.parametrize(("raw", "why"), [(b"{", "not valid JSON"), (b"[]", "no table location"),
                                          (b'{"location": "/t", "format-version": 9}', "format-version")])
def test_bad_metadata_is_refused_by_name(raw: bytes, why: str) -> None:
    with pytest.raises(TableFormatError, match=why):
        parse_metadata(raw, table="db.s.t", where="m.json")


def test_a_promoted_copys_catalog_row_wins_over_its_hint_when_newer(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """After failover drsync's version-hint.text stays behind while writers commit through the
    catalog row: the newer of the two is the table's state; a stale or unreachable row is not."""
    from drsync.tableformat.iceberg import catalog as icecat
    from drsync.tableformat.iceberg.metadata import read_pointer, signature
    from tests.iceberg_helpers import batch, catalog, create_dir_table

    table = tmp_path / "db" / "s" / "t"
    cat = catalog(tmp_path / "cat", "prod")
    t = create_dir_table(cat, "db.t", table)  # the hint names the current metadata
    hinted = read_pointer(table)
    t.append(batch(10, 1))  # through the catalog only: the hint stays behind
    row = f"metadata/{Path(t.metadata_location).name}"
    monkeypatch.setattr(icecat.CONFIG, "name", "prod")
    monkeypatch.setattr(icecat.CONFIG, "primary", f"sqlite:///{tmp_path}/cat/prod.db")
    before = signature(table)
    assert read_pointer(table) == row != hinted
    (table / row).rename(tmp_path / "gone.json")
    assert read_pointer(table) == hinted and signature(table) != before  # a stale row
    (tmp_path / "gone.json").rename(table / row)
    monkeypatch.setattr(icecat.CONFIG, "primary", f"sqlite:///{tmp_path}/absent-dir/x.db")
    assert read_pointer(table) == hinted  # an unreachable catalog: the hint
