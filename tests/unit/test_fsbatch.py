"""drsync.fsbatch: many durable writes with the waits for the disk shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drsync.fsbatch import atomic_write_many, fsync_paths
from drsync.fsutil import TMP_PREFIX


def _temps(root: Path) -> list[str]:
    return [n for _, _, names in os.walk(root) for n in names if n.startswith(TMP_PREFIX)]


def test_every_file_written_whole_in_new_directories(tmp_path: Path) -> None:
    files = {tmp_path / f"d{i % 3}" / "sub" / f"f{i}.json": f"{i}".encode() * (i + 1) for i in range(20)}
    (tmp_path / "d0" / "sub").mkdir(parents=True)
    (tmp_path / "d0" / "sub" / "f0.json").write_bytes(b"old")  # replaced, as os.replace would
    atomic_write_many(files)
    for p, data in files.items():
        assert p.read_bytes() == data
        assert p.stat().st_mode & 0o777 == 0o644 & ~_umask()
    assert not _temps(tmp_path)
    atomic_write_many({})  # nothing to do is fine


def test_a_failed_rename_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_bytes(b"")  # a non-empty directory: the rename fails
    with pytest.raises(OSError):
        atomic_write_many({tmp_path / "a": b"1", tmp_path / "taken": b"2"})
    assert not _temps(tmp_path)
    assert (tmp_path / "taken").is_dir()


def test_fsync_paths_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    fsync_paths([tmp_path, tmp_path / "f", tmp_path])  # a path twice is synced once, no error
    with pytest.raises(FileNotFoundError):
        fsync_paths([tmp_path / "f", tmp_path / "missing"])


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_renames_in_order_with_a_hook_after_each(tmp_path: Path) -> None:
    """The primary's inventories: the crash point runs after each rename, in the given order,
    and each file is already whole under its name when its hook runs."""
    files = {tmp_path / f"t{i}.json": f"new {i}".encode() for i in (3, 1, 2)}
    seen: list[tuple[str, bytes]] = []
    atomic_write_many(files, lambda p: seen.append((p.name, p.read_bytes())))
    assert seen == [(p.name, data) for p, data in files.items()]
    assert not _temps(tmp_path)
