"""DeltaFormat: the Delta answers to the TableFormat protocol that the roles and the standby use."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from drsync.tableformat import get
from drsync.tableformat.delta import list_log, read_commit


def _table(tmp_path: Path, commits: int) -> Path:
    t = tmp_path / "t"
    for i in range(commits):
        write_deltalake(str(t), pa.table({"x": list(range(i + 1))}), mode="append")
    return t


def test_set_aside_plan_lists_what_lies_above_a_version(tmp_path: Path) -> None:
    t = _table(tmp_path, 4)  # versions 0..3, version v adds v+1 rows
    DeltaTable(str(t)).create_checkpoint()  # checkpoint 3 and _last_checkpoint pointing at it
    plan = get("delta").set_aside_plan(t, "d.s.t", 1)
    assert plan.commits == [2, 3]
    assert plan.rows == 3 + 4
    added = {a["add"]["path"] for v in (2, 3) for a in read_commit(t, v) if "add" in a}
    assert plan.data_files == added
    # newest first, so the log stays contiguous while files are moved; the hint above all
    assert plan.log_files[0] == "_delta_log/_last_checkpoint"
    assert plan.log_files[1:] == sorted(plan.log_files[1:], reverse=True)
    assert "_delta_log/00000000000000000003.checkpoint.parquet" in plan.log_files
    assert "_delta_log/00000000000000000001.json" not in plan.log_files
    assert get("delta").set_aside_plan(t, "d.s.t", 3).log_files == []  # hint points at 3


def test_held_log_files_and_commits(tmp_path: Path) -> None:
    t = _table(tmp_path, 2)
    DeltaTable(str(t)).create_checkpoint()
    held = get("delta").held_log_files(t)
    assert "_delta_log/_last_checkpoint" not in held  # a pointer, replaced in place: not held
    assert {n: lf.size for n, lf in ((lf.name, lf) for lf in list_log(t).all_files())
            if not n.endswith("_last_checkpoint")} == held
    assert get("delta").commits(t) == {0: "_delta_log/00000000000000000000.json",
                                       1: "_delta_log/00000000000000000001.json"}


def test_check_file_matches_kind_to_path() -> None:
    delta = get("delta")
    assert delta.check_file("commit", "_delta_log/00000000000000000007.json", 7)
    assert not delta.check_file("commit", "_delta_log/00000000000000000007.json", 8)
    assert delta.check_file("data", "part-0.parquet", None)
    assert not delta.check_file("data", "_delta_log/part-0.parquet", None)
    assert delta.check_file("last_checkpoint", "_delta_log/_last_checkpoint", 3)
    assert not delta.check_file("last_checkpoint", "_delta_log/x", 3)
    assert delta.check_file("checkpoint", "_delta_log/00000000000000000003.checkpoint.parquet", 3)
    assert not delta.check_file("checkpoint", "x.parquet", 3)


def test_sample_rows_reads_at_most_the_limit_at_the_version(tmp_path: Path) -> None:
    t = _table(tmp_path, 3)  # version v holds 1 + 2 + ... + (v+1) rows
    fmt = get("delta")
    con = fmt.open_row_reader(1)
    try:
        assert fmt.sample_rows(con, t, 1, 100) == 3
        assert fmt.sample_rows(con, t, 2, 100) == 6
        assert fmt.sample_rows(con, t, 2, 4) == 4
        # a data file the version needs is damaged: the read fails (what continuous verification reports)
        for p in t.glob("*.parquet"):
            p.write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
        with pytest.raises(duckdb.Error):
            fmt.sample_rows(con, t, 2, 100)
    finally:
        con.close()
