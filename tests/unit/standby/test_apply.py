"""drsync.standby.apply: installing a table's files so every visible version is complete."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from drsync.errors import StandbyConflictError
from drsync.sets.bundle import file_hash
from drsync.sets.manifest import ManifestFile, ManifestTable
from drsync.site.progress import ProgressTracker
from drsync.site.state import SideProgress, StandbyState, StandbyTable
from drsync.standby.apply import LOG_NEW, apply_table, check_conflicts

NAME = "db.s.t"


def _commit(v: int) -> str:
    return f"_delta_log/{v:020d}.json"


def _stage(staging: Path, rel: str, data: bytes) -> ManifestFile:
    p = staging / "db" / "s" / "t" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    kind = "commit" if rel.endswith(".json") else "data"
    version = int(rel.split("/")[-1][:20]) if kind == "commit" else None
    return ManifestFile(path=rel, kind=kind, size=len(data), mtime_ns=1_700_000_000_000_000_000,
                        version=version, blake2b=file_hash(p), bundle="b")


def _tracker() -> ProgressTracker:
    return ProgressTracker(SideProgress(), lambda: None)


def _table(files: list[ManifestFile], *, mode: str, frm: int | None, to: int,
           at_once: bool = False) -> ManifestTable:
    return ManifestTable(name=NAME, table_id="x", mode=mode, from_version=frm, to_version=to,  # type: ignore[arg-type]
                         files=files, expose_at_once=at_once)


def _modes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            out[str(p.relative_to(root))] = stat.S_IMODE(p.lstat().st_mode)
    return out


def test_first_copy_appears_at_once_and_read_only(tmp_path: Path) -> None:
    wh, staging = tmp_path / "wh", tmp_path / "staging"
    files = [_stage(staging, "part-0.parquet", b"data0"), _stage(staging, _commit(0), b'{"a":0}\n'),
             _stage(staging, _commit(1), b'{"a":1}\n')]
    apply_table(wh, staging, _table(files, mode="full", frm=None, to=1), _tracker())
    t = wh / "db" / "s" / "t"
    assert sorted(os.listdir(t / "_delta_log")) == [f"{0:020d}.json", f"{1:020d}.json"]
    assert not (t / LOG_NEW).exists()
    modes = _modes(t)
    assert all(m in (0o444, 0o555) for m in modes.values()), modes
    assert (t / "_delta_log" / f"{1:020d}.json").stat().st_mtime_ns == 1_700_000_000_000_000_000


def test_exchange_keeps_old_versions_and_live_files_read_only(tmp_path: Path) -> None:
    wh, staging = tmp_path / "wh", tmp_path / "staging"
    first = [_stage(staging, "part-0.parquet", b"data0"), _stage(staging, _commit(0), b'{"a":0}\n')]
    apply_table(wh, staging, _table(first, mode="full", frm=None, to=0), _tracker())
    t = wh / "db" / "s" / "t"
    old_inode = (t / "_delta_log" / f"{0:020d}.json").stat().st_ino
    second = [_stage(staging, "part-2.parquet", b"data2"), _stage(staging, _commit(1), b'{"a":1}\n'),
              _stage(staging, _commit(2), b'{"a":2}\n')]
    apply_table(wh, staging, _table(second, mode="incremental", frm=0, to=2, at_once=True), _tracker())
    log = t / "_delta_log"
    assert sorted(os.listdir(log)) == [f"{v:020d}.json" for v in range(3)]
    assert (log / f"{0:020d}.json").stat().st_ino == old_inode, "old commits are linked, not copied"
    assert not (t / LOG_NEW).exists(), "the swapped-out log must be removed"
    # Removing the swapped-out log (hard links to the same inodes) must not loosen the live ones.
    assert all(m in (0o444, 0o555) for m in _modes(t).values()), _modes(t)


def test_stale_shadow_from_a_kill_is_ignored_and_removed(tmp_path: Path) -> None:
    wh, staging = tmp_path / "wh", tmp_path / "staging"
    t = wh / "db" / "s" / "t"
    (t / LOG_NEW).mkdir(parents=True)
    (t / LOG_NEW / f"{5:020d}.json").write_text("junk from a killed run")
    files = [_stage(staging, _commit(0), b'{"a":0}\n')]
    check_conflicts(wh, StandbyState(), _table(files, mode="full", frm=None, to=0))  # a leftover is ours
    apply_table(wh, staging, _table(files, mode="full", frm=None, to=0), _tracker())
    assert os.listdir(t / "_delta_log") == [f"{0:020d}.json"]
    assert not (t / LOG_NEW).exists()


def test_local_commit_is_a_conflict(tmp_path: Path) -> None:
    wh, staging = tmp_path / "wh", tmp_path / "staging"
    first = [_stage(staging, _commit(0), b'{"a":0}\n')]
    apply_table(wh, staging, _table(first, mode="full", frm=None, to=0), _tracker())
    t = wh / "db" / "s" / "t"
    os.chmod(t / "_delta_log", 0o755)
    (t / "_delta_log" / f"{1:020d}.json").write_text('{"local":1}\n')
    state = StandbyState(tables={NAME: StandbyTable(version=0, barrier_ms=0)})
    ours = [_stage(staging, _commit(1), b'{"a":1}\n')]
    with pytest.raises(StandbyConflictError, match="changed locally"):
        check_conflicts(wh, state, _table(ours, mode="incremental", frm=0, to=1))
