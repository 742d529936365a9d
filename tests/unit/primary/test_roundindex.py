"""primary/roundindex.py: the signature moves with every change of the committed state, and
the index vouches for a table only while its signature is the one it recorded."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from drsync.primary.roundindex import RoundIndex, log_signature
from drsync.site.layout import MetadataLayout


def _table(tmp_path: Path) -> Path:
    t = tmp_path / "db" / "s" / "t"
    write_deltalake(str(t), pa.table({"a": [1]}))
    return t


def test_signature_moves_with_a_commit_and_with_last_checkpoint_rewritten_in_place(tmp_path: Path) -> None:
    t = _table(tmp_path)
    s0 = log_signature(t)
    assert s0 is not None and log_signature(t) == s0
    write_deltalake(str(t), pa.table({"a": [2]}), mode="append")
    s1 = log_signature(t)
    assert s1 != s0
    # `_last_checkpoint` rewritten in place (no new name, no rename in the directory).
    lc = t / "_delta_log" / "_last_checkpoint"
    lc.write_text('{"version":1,"size":2}')
    s2 = log_signature(t)
    assert s2 != s1
    dir_times = os.stat(t / "_delta_log")
    with open(lc, "r+") as f:  # same size, new content and mtime, directory untouched
        f.write('{"version":0,"size":2}')
    os.utime(lc, ns=(dir_times.st_mtime_ns + 10**9, dir_times.st_mtime_ns + 10**9))
    assert log_signature(t) != s2


def test_no_table_has_no_signature(tmp_path: Path) -> None:
    assert log_signature(tmp_path / "nothing") is None
    (tmp_path / "plain").mkdir()
    assert log_signature(tmp_path / "plain") is None


def test_index_vouches_only_for_the_recorded_signature(tmp_path: Path) -> None:
    t = _table(tmp_path)
    sig = log_signature(t)
    assert sig is not None
    idx = RoundIndex.load(tmp_path / "meta")
    assert idx.unchanged("db.s.t", sig) is None  # nothing recorded yet
    idx.record("db.s.t", sig, 0)
    idx.save(tmp_path / "meta")
    again = RoundIndex.load(tmp_path / "meta")
    assert again.unchanged("db.s.t", sig) == 0
    assert again.unchanged("db.s.t", None) is None
    write_deltalake(str(t), pa.table({"a": [2]}), mode="append")
    assert again.unchanged("db.s.t", log_signature(t)) is None
    # What the new round keeps: only the tables it vouched for or recorded.
    again.save(tmp_path / "meta")
    assert RoundIndex.load(tmp_path / "meta").unchanged("db.s.t", sig) == 0


def test_damaged_index_costs_a_full_look_only(tmp_path: Path) -> None:
    path = MetadataLayout(tmp_path).index
    path.parent.mkdir(parents=True)
    for text in ("", "{", "[1]", '{"db.s.t": ["sig"]}', '{"db.s.t": ["sig", "x"]}'):
        path.write_text(text)
        assert RoundIndex.load(tmp_path).unchanged("db.s.t", "sig") is None, text
