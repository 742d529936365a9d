"""Durable file operations: nothing is lost, nothing is half-written.

Every write drsync makes to state, the inbox or a standby table goes through here:
temp file in the same directory, fsync, then either `os.replace` (state, data files: last
writer wins, the content is the same) or `os.link` (Delta commits: create-if-absent, because
a commit name must never be silently overwritten), then fsync of the directory so the new
name itself survives a crash.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from drsync.faults import crash_point
from drsync.nofollow import refuse_symlink

TMP_PREFIX = ".drsync-tmp-"
CHUNK = 1 << 20


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(final: Path) -> Path:
    """A unique temp name next to `final`, so the rename stays on one filesystem."""
    return final.parent / f"{TMP_PREFIX}{final.name}.{uuid.uuid4().hex[:12]}"


def ensure_dir(path: Path, mode: int = 0o750) -> None:
    """mkdir -p, fsyncing each parent whose entry we created."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=mode)
        fsync_dir(d.parent)


@contextlib.contextmanager
def _temp_writer(final: Path) -> Iterator[tuple[BinaryIO, Path]]:
    tmp = temp_path_for(final)
    # 0644 at most, whatever the umask: no file drsync writes is group/world-writable.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    f = open(fd, "wb", closefd=True)  # noqa: SIM115 - closed below, we need it open across the yield
    try:
        yield f, tmp
        f.flush()
        os.fsync(f.fileno())
    except BaseException:
        f.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    f.close()


@contextlib.contextmanager
def atomic_writer(final: Path, *, crash: str | None = None, mtime_ns: int | None = None,
                  sync_dir: bool = True) -> Iterator[BinaryIO]:
    """Stream a new `final`: the caller writes to the yielded file (a temp file next to
    `final`); on a clean exit it is fsynced and renamed over `final`, which so appears
    complete or not at all (an exception removes the temp file and leaves `final` as it was).

    `crash`: a crash point hit with the temp file complete and not yet renamed. `mtime_ns`:
    the new file's mtime. `sync_dir=False` leaves out the directory's fsync: after a power cut
    `final` is then the new file or the old one, both whole (only where recovery can take that)."""
    ensure_dir(final.parent)
    with _temp_writer(final) as (f, tmp):
        yield f
    try:
        if mtime_ns is not None:
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
        if crash is not None:
            crash_point(crash)
        os.replace(tmp, final)
    except BaseException:
        # e.g. a directory of that name: never leave the temp file behind
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    if sync_dir:
        fsync_dir(final.parent)


def atomic_write_bytes(final: Path, data: bytes, mtime_ns: int | None = None, *,
                       sync_dir: bool = True) -> None:
    """Replace `final` with `data` atomically (temp, fsync, rename, fsync dir); `sync_dir`
    as for `atomic_writer` (for progress counters of a state file whose other fields were last
    saved with it)."""
    with atomic_writer(final, mtime_ns=mtime_ns, sync_dir=sync_dir) as f:
        f.write(data)


def json_bytes(obj: Any) -> bytes:
    """How drsync writes its JSON files. Compact: state files are written often and read by
    programs (show-progress reads them for people); indent=... would take Python's slow
    pure-Python encoder."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def atomic_write_json(final: Path, obj: Any, *, sync_dir: bool = True) -> None:
    atomic_write_bytes(final, json_bytes(obj), sync_dir=sync_dir)


def write_advisory_json(final: Path, obj: Any) -> None:
    """Replace `final` atomically but with no fsync: for a file whose reader treats absent or
    unparseable as "nothing recorded" and loses only speed then (a power cut may leave it
    empty or old; a kill never does: the rename is atomic). Never for anything recovery needs."""
    data = json_bytes(obj)
    ensure_dir(final.parent)
    tmp = temp_path_for(final)
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, final)


def read_json(path: Path) -> Any:
    with open(path, "rb") as f:
        return json.load(f)


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A small JSON object file drsync keeps (intent, index, role...): None when it is absent,
    unparseable or not an object, which every caller treats as "nothing recorded"."""
    try:
        obj = read_json(path)
    except (FileNotFoundError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def create_if_absent(final: Path, data: bytes, mtime_ns: int | None = None) -> bool:
    """Create `final` with `data` only if no file has that name; True if we created it.

    `os.link` fails with EEXIST when the name exists, unlike `os.rename`, which would
    replace a commit somebody else wrote: that is the protocol's mutual exclusion.
    """
    with _temp_writer(final) as (f, tmp):
        f.write(data)
    if mtime_ns is not None:
        os.utime(tmp, ns=(mtime_ns, mtime_ns))
    try:
        os.link(tmp, final)
        created = True
    except FileExistsError:
        created = False
    finally:
        tmp.unlink()
    fsync_dir(final.parent)
    return created








def remove_stale_temps(directory: Path) -> int:
    """Delete temp files a crashed run left behind in `directory` (not recursive)."""
    n = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if entry.name.startswith(TMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                n += 1
    return n


# --- atomic directory exchange -----------------------------------------------------------

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange_paths(a: Path, b: Path) -> None:
    """Swap two directory entries atomically (Linux renameat2 RENAME_EXCHANGE).

    Raises OSError (EINVAL, ENOSYS, EOPNOTSUPP...) where the kernel or filesystem cannot; the
    caller falls back to a non-atomic way."""
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available in this C library", str(a))
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(a))


def sync_filesystem(path: Path) -> None:
    """Flush every dirty page and inode of the filesystem holding `path` (Linux syncfs): one
    call instead of an fsync per file when many small files were written."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = getattr(libc, "syncfs", None)
        if fn is None or fn(fd) != 0:
            os.sync()  # slower (all filesystems) but just as durable
    finally:
        os.close(fd)


def link_tree(src: Path, dest: Path) -> None:
    """Recreate `src` at `dest` with hard links to its files (no data copied)."""
    dest.mkdir(mode=RW_DIR)
    for entry in os.scandir(src):
        if entry.is_dir(follow_symlinks=False):
            link_tree(Path(entry.path), dest / entry.name)
        elif entry.is_file(follow_symlinks=False):
            os.link(entry.path, dest / entry.name)


# --- drsync's scratch files (staging, bundles, .part): private whatever the umask -----------

PRIVATE_DIR = 0o750
PRIVATE_FILE = 0o640


def open_private(path: Path, *, truncate: bool = True) -> BinaryIO:
    """Open `path` for writing, created 0640 (not following a symlink at its name); with
    truncate=False an existing file is kept for resuming (positioned at its start)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_TRUNC if truncate else 0)
    fd = os.open(path, flags, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return open(fd, "wb" if truncate else "r+b", closefd=True)


def make_private_dirs(path: Path) -> None:
    """mkdir -p with mode 0750 for each directory created (umask does not widen or narrow it)."""
    missing: list[Path] = []
    p = path
    while not p.is_dir():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=PRIVATE_DIR)
            os.chmod(d, PRIVATE_DIR)


# --- read-only marking -------------------------------------------------------------------
# Mode bits are the fence for ordinary (non-root) writers; root ignores them, which the docs
# say plainly. Directories get r-x so no writer can create a commit or a data file in them.

RO_FILE = 0o444
RO_DIR = 0o555
RW_DIR = 0o755
RW_FILE = 0o644


def set_tree_mode(root: Path, dir_mode: int, file_mode: int) -> None:
    refuse_symlink(root, "directory")  # chmod follows a link: it would mark its target
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, file_mode)
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), dir_mode)
    os.chmod(root, dir_mode)


def make_writable_dir(path: Path) -> None:
    """Give the owner write permission on `path` so drsync itself can add files to it."""
    refuse_symlink(path, "directory")  # chmod follows a link: it would open up its target
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(path.stat().st_mode)
        if not mode & stat.S_IWUSR:
            os.chmod(path, mode | stat.S_IWUSR)


def rmtree_force(path: Path) -> None:
    """Remove a tree even when drsync made it read-only.

    Only directories are opened up: unlinking needs write permission on the directory, not on
    the file, and a file here may be a hard link shared with a live table (a swapped-out log)
    whose read-only mode must not change. A symlink at `path` is removed itself: its target
    is never opened up (chmod) nor walked."""
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            path.unlink()
            return
    except FileNotFoundError:
        return
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, RW_DIR)
    os.chmod(path, RW_DIR)
    shutil.rmtree(path)
