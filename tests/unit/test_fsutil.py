"""drsync.fsutil: atomic replace, create-if-absent (the commit protocol), modes, stale temps."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from drsync import fsutil
from drsync.fsutil import (
    RO_DIR,
    RO_FILE,
    RW_DIR,
    RW_FILE,
    TMP_PREFIX,
    atomic_write_bytes,
    atomic_write_json,
    atomic_writer,
    create_if_absent,
    ensure_dir,
    read_json,
    remove_stale_temps,
    rmtree_force,
    set_tree_mode,
)
from tests.helpers import as_owner_of


def mode_of(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def temps_in(d: Path) -> list[str]:
    return [n for n in os.listdir(d) if n.startswith(TMP_PREFIX)]


def make_tree(root: Path) -> list[Path]:
    """A small tree: files at several depths, one empty directory."""
    files = [root / "a.txt", root / "sub" / "b.bin", root / "sub" / "deep" / "c.json"]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(f.name.encode())
    (root / "empty").mkdir()
    return files


# --- atomic_write_bytes ----------------------------------------------------------------------


def test_atomic_write_creates_file_and_missing_parents(tmp_path: Path) -> None:
    target = tmp_path / "x" / "y" / "state.json"
    atomic_write_bytes(target, b"hello")
    assert target.read_bytes() == b"hello"
    assert temps_in(target.parent) == []


def test_atomic_write_replaces_existing_content_and_inode(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old content that is longer")
    old_inode = target.stat().st_ino
    # A reader holding the old file keeps seeing the old bytes: replace is a rename, not
    # an in-place rewrite.
    with open(target, "rb") as reader:
        atomic_write_bytes(target, b"new")
        assert reader.read() == b"old content that is longer"
    assert target.read_bytes() == b"new"
    assert target.stat().st_ino != old_inode
    assert temps_in(tmp_path) == []


def test_atomic_write_sets_mtime(tmp_path: Path) -> None:
    target = tmp_path / "f"
    mtime_ns = 1_600_000_000_123_456_789
    atomic_write_bytes(target, b"x", mtime_ns=mtime_ns)
    assert target.stat().st_mtime_ns == mtime_ns


def test_atomic_write_failure_leaves_old_content_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the final rename fails, the old file is intact; a temp left behind is one that
    remove_stale_temps recognises (as after a crash between fsync and rename)."""
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def boom(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil.os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    # Whatever temp a crashed write leaves is recognisable and removable.
    remove_stale_temps(tmp_path)
    assert temps_in(tmp_path) == []
    assert target.read_bytes() == b"old"


def test_atomic_writer_streams_and_an_error_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f"
    with atomic_writer(target) as f:
        f.write(b"new ")
        f.write(b"content")
        assert not target.exists()  # nothing under the final name before the rename
    assert target.read_bytes() == b"new content"
    with pytest.raises(RuntimeError), atomic_writer(target, crash="test.point") as f:
        f.write(b"half")
        raise RuntimeError("the writer failed")
    assert target.read_bytes() == b"new content"
    assert temps_in(target.parent) == []


def test_atomic_write_json_round_trip(tmp_path: Path) -> None:
    obj = {"b": [1, 2, {"c": None}], "a": "Zürich ✓"}
    target = tmp_path / "s.json"
    atomic_write_json(target, obj)
    assert read_json(target) == obj
    assert "Zürich" in target.read_text(encoding="utf-8")  # not \u-escaped
    assert temps_in(tmp_path) == []


def test_many_atomic_writes_leave_exactly_one_file(tmp_path: Path) -> None:
    target = tmp_path / "f"
    for i in range(50):
        atomic_write_bytes(target, str(i).encode())
    assert os.listdir(tmp_path) == ["f"]
    assert target.read_bytes() == b"49"


# --- create_if_absent --------------------------------------------------------------------------


def test_create_if_absent_creates_new(tmp_path: Path) -> None:
    target = tmp_path / "00000000000000000001.json"
    assert create_if_absent(target, b"commit-1", mtime_ns=1_700_000_000_000_000_000) is True
    assert target.read_bytes() == b"commit-1"
    assert target.stat().st_mtime_ns == 1_700_000_000_000_000_000
    assert target.stat().st_nlink == 1  # the temp link is gone
    assert os.listdir(tmp_path) == [target.name]


def test_create_if_absent_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "00000000000000000001.json"
    target.write_bytes(b"written by somebody else")
    before = target.stat()
    assert create_if_absent(target, b"ours", mtime_ns=1) is False
    after = target.stat()
    assert target.read_bytes() == b"written by somebody else"
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino, before.st_mtime_ns, before.st_size)
    assert os.listdir(tmp_path) == [target.name]


def test_create_if_absent_same_content_twice(tmp_path: Path) -> None:
    target = tmp_path / "c.json"
    assert create_if_absent(target, b"x") is True
    assert create_if_absent(target, b"x") is False
    assert target.read_bytes() == b"x"
    assert temps_in(tmp_path) == []


def test_create_if_absent_respects_dangling_symlink(tmp_path: Path) -> None:
    """A name that exists as a (dangling) symlink is still an existing name."""
    target = tmp_path / "c.json"
    target.symlink_to(tmp_path / "nowhere")
    assert create_if_absent(target, b"x") is False
    assert target.is_symlink()
    assert not (tmp_path / "nowhere").exists()


# --- ensure_dir ---------------------------------------------------------------------------------


def test_ensure_dir_creates_nested_with_mode(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        target = tmp_path / "a" / "b" / "c"
        ensure_dir(target, mode=0o750)
    finally:
        os.umask(old)
    for d in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert d.is_dir()
        assert mode_of(d) == 0o750
    # Idempotent and harmless on an existing tree.
    ensure_dir(target)
    ensure_dir(tmp_path)
    assert target.is_dir()


def test_ensure_dir_fails_when_a_component_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(OSError):
        ensure_dir(tmp_path / "f" / "sub")


# --- modes ----------------------------------------------------------------------------------


def test_set_tree_mode_read_only_and_back(tmp_path: Path) -> None:
    root = tmp_path / "t"
    files = make_tree(root)
    set_tree_mode(root, RO_DIR, RO_FILE)
    for f in files:
        assert mode_of(f) == RO_FILE
    for d in (root, root / "sub", root / "sub" / "deep", root / "empty"):
        assert mode_of(d) == RO_DIR
    set_tree_mode(root, RW_DIR, RW_FILE)
    for f in files:
        assert mode_of(f) == RW_FILE
    assert mode_of(root / "sub" / "deep") == RW_DIR


def test_set_tree_mode_does_not_follow_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"x")
    os.chmod(outside, 0o600)
    root = tmp_path / "t"
    make_tree(root)
    (root / "link").symlink_to(outside)
    set_tree_mode(root, RO_DIR, RO_FILE)
    set_tree_mode(root, RW_DIR, RW_FILE)
    assert mode_of(outside) == 0o600


def test_rmtree_force_removes_read_only_tree(tmp_path: Path) -> None:
    root = tmp_path / "t"
    make_tree(root)
    set_tree_mode(root, RO_DIR, RO_FILE)
    rmtree_force(root)
    assert not root.exists()
    rmtree_force(root)  # absent: no error





def test_rmtree_force_as_unprivileged_owner(tmp_path: Path) -> None:
    """A plain rmtree of a read-only tree is refused to its (non-root) owner; rmtree_force
    removes it."""
    # pytest's tmp_path parents are 0700 root: work in a directory the owner can reach.
    with tempfile.TemporaryDirectory(prefix="drsync-fsutil-") as tmp:
        base = Path(tmp)
        os.chmod(base, 0o755)
        root = base / "t"
        make_tree(root)
        set_tree_mode(root, RO_DIR, RO_FILE)
        with as_owner_of(base):
            with pytest.raises(PermissionError):
                shutil.rmtree(root)
            assert (root / "sub").is_dir()
            rmtree_force(root)
            assert not root.exists()


# --- remove_stale_temps ---------------------------------------------------------------------------


def test_remove_stale_temps_only_removes_temps(tmp_path: Path) -> None:
    keep = [tmp_path / "00000000000000000000.json", tmp_path / "state.json", tmp_path / "x.part"]
    for k in keep:
        k.write_bytes(b"k")
    stale = [tmp_path / f"{TMP_PREFIX}state.json.abc123", tmp_path / f"{TMP_PREFIX}b.parquet"]
    for s in stale:
        s.write_bytes(b"s")
    nested = tmp_path / "sub"
    nested.mkdir()
    (nested / f"{TMP_PREFIX}deep").write_bytes(b"s")
    assert remove_stale_temps(tmp_path) == 2
    assert sorted(os.listdir(tmp_path)) == sorted([k.name for k in keep] + ["sub"])
    assert (nested / f"{TMP_PREFIX}deep").exists()  # not recursive
    assert remove_stale_temps(tmp_path) == 0


def test_remove_stale_temps_missing_dir(tmp_path: Path) -> None:
    assert remove_stale_temps(tmp_path / "absent") == 0


def test_temp_path_is_in_same_dir_and_unique(tmp_path: Path) -> None:
    final = tmp_path / "f.json"
    a, b = fsutil.temp_path_for(final), fsutil.temp_path_for(final)
    assert a.parent == b.parent == tmp_path
    assert a != b
    assert a.name.startswith(TMP_PREFIX)


def test_advisory_json_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    from drsync.fsutil import read_json_object, write_advisory_json

    target = tmp_path / "new" / "index.json"
    write_advisory_json(target, {"a": 1})
    write_advisory_json(target, {"b": [2, "x"]})
    assert read_json_object(target) == {"b": [2, "x"]}
    assert [p.name for p in target.parent.iterdir()] == ["index.json"]
