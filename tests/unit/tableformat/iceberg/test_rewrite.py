"""The standby's rewrite of a staged Iceberg table: every path rebased, manifest_length the
rewritten manifest's size, the same bytes on a re-run, the pointer regenerated, nothing of
the primary's location left, foreign paths refused."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from drsync.errors import UnsafePathError
from drsync.tableformat.iceberg.collect import collect_changes
from drsync.tableformat.iceberg.metadata import HINT, read_metadata_log, read_pointer
from drsync.tableformat.iceberg.reachable import read_avro
from drsync.tableformat.iceberg.rewrite import rewrite_table
from tests.iceberg_helpers import batch, catalog, commit, create_dir_table


@dataclass
class F:
    path: str
    kind: str


def _staged(tmp: Path) -> tuple[Path, list[F]]:
    src = tmp / "primary" / "db" / "s" / "t"
    t = create_dir_table(catalog(tmp / "cat"), "db.t", src)
    commit(t, lambda t: t.append(batch(10, 2)))
    log = read_metadata_log(src, read_pointer(src), "db.s.t")
    change = collect_changes(src, "db.s.t", log, 1 << 62, None)
    assert change is not None
    staged = tmp / "staging" / "db" / "s" / "t"
    for f in change.files:
        (staged / f.path).parent.mkdir(parents=True, exist_ok=True)
        if f.content is not None:
            (staged / f.path).write_bytes(f.content)
        else:
            shutil.copyfile(src / f.path, staged / f.path)
    return staged, [F(f.path, f.kind) for f in change.files]


def test_rewrite_rebases_every_path_and_is_deterministic(tmp_path: Path) -> None:
    staged, files = _staged(tmp_path)
    final = tmp_path / "standby" / "db" / "s" / "t"
    again = tmp_path / "again"
    shutil.copytree(staged, again)
    rewrite_table(staged, files, final, final, table="db.s.t")
    rewrite_table(again, files, final, final, table="db.s.t")
    primary = str(tmp_path / "primary").encode()
    for f in files:
        data = (staged / f.path).read_bytes()
        assert data == (again / f.path).read_bytes(), f"{f.path}: a re-run wrote other bytes"
        if f.kind != "data":
            assert primary not in data, f"{f.path} still names the primary"
    for f in files:
        if f.kind == "manifest_list":
            for e in read_avro(staged / f.path, table="t"):
                rel = e["manifest_path"].removeprefix(f"{final}/")
                assert e["manifest_length"] == (staged / rel).stat().st_size
    meta_rel = next(f.path for f in files if f.kind == "metadata")
    assert read_pointer(staged) == meta_rel
    assert (staged / HINT).read_text() == meta_rel.split("/")[-1].removesuffix(".metadata.json")


def test_a_staged_manifest_naming_a_foreign_file_is_refused(tmp_path: Path) -> None:
    staged, files = _staged(tmp_path)
    import json

    meta_rel = next(f.path for f in files if f.kind == "metadata")
    meta = json.loads((staged / meta_rel).read_bytes())
    meta["location"] = "/somewhere/else"  # every manifest path now lies outside the location
    (staged / meta_rel).write_text(json.dumps(meta))
    with pytest.raises(UnsafePathError, match="outside the table's location"):
        rewrite_table(staged, files, tmp_path / "sb", tmp_path / "sb", table="db.s.t")
