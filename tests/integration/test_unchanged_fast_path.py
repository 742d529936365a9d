"""The primary's fast path for unchanged tables (primary/roundindex.py, tables/index.json)
must never hide a change: only a table idle and fully shipped is skipped unread."""

from __future__ import annotations

import json
import os
import shutil
import time

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from tests.helpers import Sites, drsync, duck, rows


def _round(sites: Sites) -> None:
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)


def _index(sites: Sites) -> dict[str, object]:
    return json.loads((sites.primary_meta / "tables" / "index.json").read_text())


def test_commit_after_the_barrier_is_not_hidden_by_the_index(sites: Sites) -> None:
    p, s = sites.primary / "db" / "s" / "t", sites.standby / "db" / "s" / "t"
    write_deltalake(str(p), pa.table({"a": [1]}))
    _round(sites)
    _round(sites)  # idle now: indexed
    assert "db.s.t" in _index(sites)
    write_deltalake(str(p), pa.table({"a": [2]}), mode="append")
    commit = p / "_delta_log" / "00000000000000000001.json"
    future = time.time() + 3600
    os.utime(commit, (future, future))  # "committed" after the next barrier
    _round(sites)
    assert DeltaTable(str(s)).version() == 0, "a commit after the barrier was shipped"
    assert "db.s.t" not in _index(sites), "a table with a commit beyond the barrier was indexed"
    now = time.time()
    os.utime(commit, (now, now))
    _round(sites)
    assert DeltaTable(str(s)).version() == 1
    assert rows(duck(), s) == rows(duck(), p)


def test_table_recreated_with_the_same_names_is_replaced_not_skipped(sites: Sites) -> None:
    p, s = sites.primary / "db" / "s" / "t", sites.standby / "db" / "s" / "t"
    write_deltalake(str(p), pa.table({"a": [1]}))
    write_deltalake(str(sites.primary / "db" / "s" / "other"), pa.table({"a": [7]}))
    _round(sites)
    _round(sites)
    assert "db.s.t" in _index(sites)
    # Dropped and re-created: the same log names (version 0), another table. The index must
    # not hide it; since publications (issue 5) the new table replaces the old one whole.
    shutil.rmtree(p)
    write_deltalake(str(p), pa.table({"a": [42]}))
    b = drsync("backup", "-c", str(sites.config))
    assert b.returncode == 0, b.stdout + b.stderr
    assert "db.s.t" in b.stderr and "re-created" in b.stderr
    drsync("restore", "-c", str(sites.config), check=True)
    assert rows(duck(), s) == [(42,)], "the standby must hold the new table, and only it"
