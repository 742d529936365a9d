"""Taking an Iceberg table back to a version: the plan repoints version-hint.text first and
moves what only the metadata above reaches, that metadata last; nothing the version reaches."""

from __future__ import annotations

from pathlib import Path

import pytest

from drsync.errors import TableFormatError
from drsync.tableformat.iceberg.metadata import HINT, hint_text, metadata_version
from drsync.tableformat.iceberg.setaside import set_aside_plan
from tests.iceberg_helpers import batch, catalog, commit, create_dir_table, current_metadata


def test_plan_repoints_first_and_moves_the_metadata_above_last(tmp_path: Path) -> None:
    src = tmp_path / "db" / "s" / "t"
    t = create_dir_table(catalog(tmp_path / "cat"), "db.t", src)
    keep_meta = current_metadata(src)
    keep = metadata_version(keep_meta.name)
    assert keep is not None
    before = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}
    commit(t, lambda t: t.append(batch(10, 2)))
    commit(t, lambda t: t.append(batch(20, 3)))
    plan = set_aside_plan(src, "db.s.t", keep)
    assert plan.pointers == {HINT: hint_text(f"metadata/{keep_meta.name}").encode()}
    assert plan.commits == [keep + 1, keep + 2] and plan.rows == 5
    metas = [p for p in plan.log_files if p.endswith(".metadata.json")]
    assert plan.log_files[-2:] == metas and [metadata_version(m) for m in metas] == [keep + 2, keep + 1]
    assert not set(plan.log_files) & before  # nothing the version reaches
    assert sum(p.endswith(".parquet") for p in plan.log_files) == 2
    assert set_aside_plan(src, "db.s.t", keep + 2).log_files == []
    assert set_aside_plan(src, "db.s.t", keep + 2).pointers == {}


def test_a_table_without_version_hint_is_refused_by_name(tmp_path: Path) -> None:
    src = tmp_path / "db" / "s" / "t"
    create_dir_table(catalog(tmp_path / "cat"), "db.t", src)
    (src / HINT).unlink()
    with pytest.raises(TableFormatError, match=r"db\.s\.t: cannot take it back"):
        set_aside_plan(src, "db.s.t", 0)
