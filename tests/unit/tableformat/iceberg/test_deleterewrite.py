"""deleterewrite: the standby's handling of delete-file entries while manifests are rewritten:
a shipped delete file is rewritten once (however many entries name it) and its new size goes
into every entry; one installed by an earlier set gives its installed size; a DELETED entry's
vanished file only has its paths moved; refusals name the table."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from drsync.errors import TableFormatError, UnsafePathError
from drsync.tableformat.iceberg.deleterewrite import DeleteEntries, rewrite_delete_file
from drsync.tableformat.iceberg.puffin import read_footer
from tests.unit.tableformat.iceberg.relocate import LOCATIONS, TEST_DATA

OLD = "/srv/primary/wh/db/s/t"
NEW = "/srv/standby/wh/db/s/t"
POS = "data/00000-3-1c142ffe-c3f5-4089-9820-f2a530d50754-00001-deletes.parquet"


def _staged(tmp: Path) -> Path:
    """A staged table holding one Spark position-delete file whose paths name OLD."""
    from drsync.tableformat.iceberg.deletefiles import rewrite_position_deletes

    staged = tmp / "staged"
    (staged / "data").mkdir(parents=True)
    rewrite_position_deletes(TEST_DATA / "spark_v2_position_deletes" / POS, staged / POS,
                             LOCATIONS["spark_v2_position_deletes"], OLD)
    return staged


def _entry(rel: str, size: int = 1) -> dict[str, Any]:
    return {"content": 1, "file_path": f"{OLD}/{rel}", "file_format": "PARQUET",
            "file_size_in_bytes": size, "referenced_data_file": None,
            "lower_bounds": None, "upper_bounds": None}


def test_shipped_file_rewritten_once_for_every_entry(tmp_path: Path) -> None:
    staged = _staged(tmp_path)
    d = DeleteEntries(staged, tmp_path / "installed", {POS}, OLD, NEW, table="db.s.t")
    a, b = _entry(POS), _entry(POS)
    d.fix(a, POS, where="manifest m1.avro")
    d.fix(b, POS, where="manifest m2.avro")  # a second rewrite would refuse NEW's paths
    size = (staged / POS).stat().st_size
    assert a["file_size_in_bytes"] == b["file_size_in_bytes"] == size
    paths = set(pq.read_table(staged / POS, columns=["file_path"]).column(0).to_pylist())
    assert paths and all(p.startswith(NEW + "/data/") for p in paths)


def test_installed_file_gives_its_size_and_is_left_alone(tmp_path: Path) -> None:
    installed = tmp_path / "installed"
    (installed / "data").mkdir(parents=True)
    (installed / "data" / "old-deletes.parquet").write_bytes(b"x" * 1234)
    d = DeleteEntries(tmp_path / "staged", installed, set(), OLD, NEW, table="db.s.t")
    e = _entry("data/old-deletes.parquet")
    e["referenced_data_file"] = f"{OLD}/data/a.parquet"
    d.fix(e, "data/old-deletes.parquet", where="manifest m.avro")
    assert e["file_size_in_bytes"] == 1234
    assert e["referenced_data_file"] == f"{NEW}/data/a.parquet"
    assert (installed / "data" / "old-deletes.parquet").read_bytes() == b"x" * 1234


def test_vanished_file_of_a_deleted_entry_keeps_its_size(tmp_path: Path) -> None:
    d = DeleteEntries(tmp_path / "staged", tmp_path / "installed", set(), OLD, NEW, table="t")
    e = _entry("data/gone-deletes.parquet", size=77)
    d.fix(e, "data/gone-deletes.parquet", where="manifest m.avro")
    assert e["file_size_in_bytes"] == 77


def test_deletion_vector_entries_share_one_rewrite(tmp_path: Path) -> None:
    src = TEST_DATA / "v3_deletion_vectors" / "data" / "multiple-deletion-vectors.puffin"
    old = LOCATIONS["v3_deletion_vectors"]
    staged = tmp_path / "staged"
    (staged / "data").mkdir(parents=True)
    shutil.copyfile(src, staged / "data" / src.name)
    rel = f"data/{src.name}"
    d = DeleteEntries(staged, tmp_path / "installed", {rel}, old, NEW, table="t")
    footer, _ = read_footer(src)
    entries = [{"content": 1, "file_path": f"{old}/{rel}", "file_format": "PUFFIN",
                "file_size_in_bytes": src.stat().st_size, "content_offset": b["offset"],
                "content_size_in_bytes": b["length"],
                "referenced_data_file": b["properties"]["referenced-data-file"]}
               for b in footer["blobs"]]
    for e in entries:
        d.fix(e, rel, where="manifest m.avro")
    new_footer, _ = read_footer(staged / rel)
    for e, b in zip(entries, new_footer["blobs"], strict=True):
        assert e["file_size_in_bytes"] == (staged / rel).stat().st_size
        assert e["referenced_data_file"] == b["properties"]["referenced-data-file"]
        assert (e["content_offset"], e["content_size_in_bytes"]) == (b["offset"], b["length"])
        assert str(e["referenced_data_file"]).startswith(NEW + "/data/")


def test_errors_name_the_table(tmp_path: Path) -> None:
    bad = tmp_path / "bad-deletes.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(TableFormatError) as e:
        rewrite_delete_file(bad, tmp_path / "out.parquet", OLD, NEW, table="db.s.t")
    assert str(e.value).startswith("table db.s.t: ") and "bad-deletes.parquet" in str(e.value)
    d = DeleteEntries(tmp_path, tmp_path, set(), OLD, NEW, table="db.s.t")
    entry = _entry("data/x-deletes.parquet")
    entry["referenced_data_file"] = "/srv/primary/wh/db/s/other/data/a.parquet"
    with pytest.raises(UnsafePathError) as u:
        d.fix(entry, "data/x-deletes.parquet", where="manifest m.avro")
    assert "table db.s.t: manifest m.avro" in str(u.value)
