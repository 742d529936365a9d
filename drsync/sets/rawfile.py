"""Large files travel as they are: one file, one "raw" bundle, no tar, no copy.

A data file (Parquet, deletion vector) of at least RAW_MIN_BYTES that compression would not
shrink is not packed into a tar bundle. On the primary it is hard-linked into the set's media
directory under a bundle name (`<key>_NNNN.raw`) and hashed once there; SHIP sends it like any
bundle (the agent hashes it while it arrives, digest.py); on the standby restore hard-links the
received file into staging and from there into the table (apply.py renames), so the bytes are
written once per side and never copied again. Where a link cannot be made (another
filesystem) the file is copied instead, hashed in the same pass.

Why a link is safe: a Delta data file is immutable once committed, and nothing drsync does
writes a linked file in place (the agent writes `.part` files and renames; apply only sets mode
and mtime; a format that rewrites files on install gets its own copy first, apply.py).
A file changed in place on the primary after packing fails the agent's digest check: the
transfer is refused, never installed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from pathlib import Path
from typing import Any, BinaryIO

from drsync.errors import IntegrityError, disk_full
from drsync.faults import crash_point
from drsync.fsutil import CHUNK, TMP_PREFIX, fsync_dir, open_private
from drsync.nofollow import open_regular_nofollow
from drsync.sets.bundle import BundleEntry, BundleResult, PackedFile
from drsync.sets.digest import file_matches, new_hash

# At and above this size a data file that does not compress travels as it is. Below it the
# per-file cost (a stat and a put round trip, a directory entry) outweighs the tar copy.
RAW_MIN_BYTES = 1 << 20
_CROSS_DEVICE = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP)


def place_raw(final: Path, e: BundleEntry) -> BundleResult:
    """Hard-link (or copy) the entry's source to `final` and hash it; `missing` if it vanished."""
    assert e.source is not None and e.root is not None
    tmp = final.parent / f"{TMP_PREFIX}{final.name}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    rel = e.source.relative_to(e.root).as_posix()
    try:
        src = open_regular_nofollow(e.root, rel, table=".".join(e.member.split("/")[:3]))
    except FileNotFoundError:
        return BundleResult(final, 0, "", 0, [], [e.member], "raw")
    with src:
        h = new_hash()
        try:  # the very inode opened above, not whatever the path names now
            _link_fd(src.fileno(), tmp)
            linked = True
        except OSError as err:
            if err.errno not in _CROSS_DEVICE and err.errno != errno.ENOENT:
                raise
            linked = False
        size = 0
        if linked:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
        else:
            size = _copy_hashing(src, tmp, h, f"{final} (a copy of {e.member})", sync=True)
    crash_point("raw.placed")  # the set's temp name is there, not yet its final name
    os.replace(tmp, final)
    fsync_dir(final.parent)
    digest = h.hexdigest()
    return BundleResult(final, size, digest, size, [PackedFile(e.member, size, digest)], [], "raw")


def _copy_hashing(src: BinaryIO, tmp: Path, h: Any, what: str, *, sync: bool) -> int:
    """Copy `src` to a new private `tmp`, feeding `h` on the way; the byte count. A full disk
    removes `tmp` and says so naming `what`."""
    size = 0
    try:
        with open_private(tmp) as out:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            if sync:
                os.fsync(out.fileno())
    except OSError as err:
        if full := disk_full(err, what):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise full from None
        raise
    return size


def _link_fd(fd: int, dest: Path) -> None:
    """linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N: a new name for an open file's inode.
    (A dir fd makes CPython call linkat with the flag; plain link() would refuse: EXDEV.)"""
    root = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.link(f"/proc/self/fd/{fd}", dest, src_dir_fd=root, follow_symlinks=True)
    finally:
        os.close(root)


def stage_raw(path: Path, size: int, digest: str, dest: Path, verify: bool) -> None:
    """Put a received raw file at `dest` (staging): a hard link, or a checked copy across
    filesystems. `verify` (verify-on-restore=full) hashes it again first; otherwise the agent's
    check on arrival stands and only its size is checked here.

    Raises IntegrityError naming the file when it is missing, not a regular file, of another
    size or (when hashed) another digest."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise IntegrityError(f"file {path} of the set is missing") from None
    if not stat.S_ISREG(st.st_mode):
        raise IntegrityError(f"file {path} of the set is not a regular file; refused")
    if st.st_size != size:
        raise IntegrityError(f"file {path.name} has {st.st_size} bytes, manifest says {size}")
    if verify and not file_matches(path, digest):
        raise IntegrityError(f"file {path.name} fails its hash check (corrupted)")
    with contextlib.suppress(FileNotFoundError):
        dest.unlink()
    try:
        os.link(path, dest, follow_symlinks=False)
        return
    except OSError as err:
        if err.errno not in _CROSS_DEVICE:
            raise
    tmp = dest.parent / f"{TMP_PREFIX}{dest.name}"
    h = new_hash(like=digest)
    with open(path, "rb") as f:  # not fsynced: the caller flushes once for all staged files
        _copy_hashing(f, tmp, h, f"the staged copy of {path.name}", sync=False)
    if h.hexdigest() != digest:
        tmp.unlink()
        raise IntegrityError(f"file {path.name} fails its hash check (corrupted)")
    os.replace(tmp, dest)


def own_copy(path: Path) -> None:
    """Give `path` an inode of its own (if it shares one) before it is rewritten in place."""
    if os.lstat(path).st_nlink <= 1:
        return
    tmp = path.parent / f"{TMP_PREFIX}{path.name}"
    shutil.copyfile(path, tmp)
    os.replace(tmp, path)
