"""Never through a symlink: paths under a root (a table, the standby's warehouse) are walked
with `lstat`/`O_NOFOLLOW`, so a link planted in a table directory can neither make the primary
ship a file from elsewhere (an SSH key, the API token) nor make the standby write, chmod or
delete outside its warehouse (docs/security.md).

Kept free of heavy imports (the agent imports fsutil, which imports this).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from drsync.errors import UnsafePathError

_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]}


def printable(text: str, limit: int = 2000) -> str:
    """Text from the other site made safe for one log line: control characters (newline,
    carriage return, escape...) shown as \\xNN, so it cannot forge lines or terminal output."""
    return text[:limit].translate(_CONTROL)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def symlink_on_path(root: Path, rel: str) -> str | None:
    """The first component of `rel` under `root` (root itself excluded) that is a symlink, as
    a root-relative path, or None. Components that do not exist end the walk (None)."""
    p = root
    done: list[str] = []
    for part in rel.split("/"):
        p = p / part
        done.append(part)
        try:
            if stat.S_ISLNK(os.lstat(p).st_mode):
                return "/".join(done)
        except (FileNotFoundError, NotADirectoryError):
            return None
    return None


def refuse_symlink_path(root: Path, rel: str, *, table: str, what: str) -> None:
    """Raise UnsafePathError when any component of `rel` under `root` is a symlink."""
    link = symlink_on_path(root, rel)
    if link is not None:
        raise UnsafePathError(
            f"table {table}: {what} {root / link} is a symlink; drsync never follows one",
            hint=f"replace the symlink {root / link} by the real directory or file")


def open_regular_nofollow(root: Path, rel: str, *, table: str) -> BinaryIO:
    """Open `root/rel` for reading without following a symlink at any component below `root`
    (each directory opened with O_NOFOLLOW relative to the previous one: no window between a
    check and the open), and only if it is a regular file. Raises UnsafePathError otherwise,
    FileNotFoundError when a component is missing."""
    parts = rel.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, part in enumerate(parts[:-1]):
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno in (40, 20):  # ELOOP (a symlink), ENOTDIR (a symlink to a file, a file)
                    raise _refused(root, parts[: i + 1], table, "directory") from None
                raise
            os.close(fd)
            fd = nfd
        try:
            ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=fd)
        except OSError as e:
            if e.errno == 40:  # ELOOP: the file itself is a symlink
                raise _refused(root, parts, table, "file") from None
            raise
    finally:
        os.close(fd)
    st = os.fstat(ffd)
    if not stat.S_ISREG(st.st_mode):
        os.close(ffd)
        raise _refused(root, parts, table, "regular file")
    os.set_blocking(ffd, True)
    return open(ffd, "rb", closefd=True)


def read_range_nofollow(root: Path, rel: str, offset: int, length: int, *,
                        table: str) -> tuple[int, bytes] | None:
    """(size of the file, up to `length` bytes from `offset`) of the regular file `root/rel`,
    no symlink followed; None when it does not exist (a self-healing standby's fetch)."""
    try:
        with open_regular_nofollow(root, rel, table=table) as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(offset)
            return size, f.read(length)
    except FileNotFoundError:
        return None


def _refused(root: Path, parts: list[str], table: str, what: str) -> UnsafePathError:
    where = root / "/".join(parts)
    if what == "regular file":
        return UnsafePathError(f"table {table}: {where} is not a regular file; drsync ships only "
                               "regular files", hint=f"remove {where} from the table directory")
    return UnsafePathError(f"table {table}: {where} is a symlink (or not a {what}); drsync never "
                           "follows one", hint=f"replace {where} by the real {what}")


def refuse_symlink(path: Path, what: str) -> None:
    """Raise UnsafePathError when `path` itself is a symlink (a missing path passes)."""
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise UnsafePathError(f"{what} {path} is a symlink; drsync never follows one",
                                  hint=f"remove the symlink {path} (drsync writes only real directories)")
    except FileNotFoundError:
        return
