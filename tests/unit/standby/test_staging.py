"""drsync.standby.staging (a set's files staged flat, one directory per set) and
apply.install_tables (tables installed side by side)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drsync.errors import StandbyConflictError
from drsync.sets.digest import data_hash
from drsync.sets.manifest import Manifest, ManifestFile, ManifestTable
from drsync.site.progress import ProgressTracker
from drsync.site.state import SideProgress
from drsync.standby.apply import install_tables
from drsync.standby.staging import Staging

MTIME = 1_700_000_000_000_000_000


def _manifest(tables: list[ManifestTable]) -> Manifest:
    return Manifest(key="20261206_210000", prior_key=None, barrier_utc="x", barrier_ms=0,
                    created_utc="x", tables=tables)


def _file(rel: str, data: bytes) -> ManifestFile:
    kind = "commit" if rel.startswith("_delta_log/") else "data"
    version = int(rel.split("/")[-1][:20]) if kind == "commit" else None
    return ManifestFile(path=rel, kind=kind, size=len(data), mtime_ns=MTIME, version=version,
                        blake2b=data_hash(data), bundle="b")


def _table(name: str, files: list[ManifestFile], fmt: str = "delta") -> ManifestTable:
    return ManifestTable(name=name, format=fmt, table_id="x", mode="full", from_version=None,
                         to_version=0, files=files)


def _commit(v: int) -> str:
    return f"_delta_log/{v:020d}.json"


Staged = list[tuple[ManifestTable, dict[str, bytes]]]


def _tables(n: int) -> Staged:
    out = []
    for i in range(n):
        content = {f"p=x/part-{i}.parquet": f"data {i}".encode(), _commit(0): f'{{"t":{i}}}\n'.encode()}
        out.append((_table(f"db{i}.s.t{i}", [_file(r, d) for r, d in content.items()]), content))
    return out


def test_delta_files_are_staged_flat_iceberg_keeps_its_tree(tmp_path: Path) -> None:
    tables = [t for t, _ in _tables(3)]
    ice = _table("db.s.ice", [_file("metadata/v1.metadata.json", b"{}")], fmt="iceberg")
    m = _manifest([*tables, ice])
    staging = Staging.plan(tmp_path / "k", m)
    staging.make_dirs(m)
    paths = [staging.file(t, f.path) for t in m.tables for f in t.files]
    assert len(set(paths)) == len(paths)
    flat = [p for p in paths if p.parent == tmp_path / "k"]
    assert len(flat) == 6  # every Delta file directly in the set's one directory
    tree = tmp_path / "k" / "db/s/ice/metadata/v1.metadata.json"
    assert staging.file(ice, "metadata/v1.metadata.json") == tree
    assert (tmp_path / "k" / "db/s/ice/metadata").is_dir()
    assert sorted(os.listdir(tmp_path / "k")) == ["db"]  # no directory per Delta table


def _staged(tmp_path: Path, n: int) -> tuple[Staged, Manifest, Staging]:
    """`n` tables, each file of theirs staged (flat) as VERIFY leaves them."""
    content = _tables(n)
    m = _manifest([t for t, _ in content])
    staging = Staging.plan(tmp_path / "staging" / m.key, m)
    staging.make_dirs(m)
    for t, files in content:
        for rel, data in files.items():
            staging.file(t, rel).write_bytes(data)
    return content, m, staging


def test_tables_install_side_by_side_from_flat_staging(tmp_path: Path) -> None:
    content, m, staging = _staged(tmp_path, 12)
    wh = tmp_path / "wh"
    install_tables(wh, staging, m.tables, ProgressTracker(SideProgress(), lambda: None))
    for t, files in content:
        for rel, data in files.items():
            p = wh / t.path / rel
            assert p.read_bytes() == data and p.stat().st_mtime_ns == MTIME
    assert os.listdir(staging.root) == []  # every staged file moved into its table


def test_a_conflicting_table_fails_the_install_naming_it(tmp_path: Path) -> None:
    _, m, staging = _staged(tmp_path, 6)
    wh = tmp_path / "wh"
    bad = m.tables[3]
    (wh / bad.path / "_delta_log").mkdir(parents=True)
    (wh / bad.path / _commit(0)).write_bytes(b'{"other":1}\n')  # a commit 0 of other content
    with pytest.raises(StandbyConflictError, match=bad.name):
        install_tables(wh, staging, m.tables, ProgressTracker(SideProgress(), lambda: None))
    assert (wh / bad.path / _commit(0)).read_bytes() == b'{"other":1}\n'  # never overwritten
