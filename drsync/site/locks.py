"""One lock file per operation, holding the owner's PID (Barman's lockfile idea).

`flock` is used rather than `fcntl` record locks: a record lock is silently dropped when *any*
descriptor of the file is closed by the process, an flock only when its own descriptor is.
The kernel releases an flock when the holder dies, so a lock file left by a killed process is
never "stale" in the dangerous sense: the next run takes it and says whose PID it replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from drsync.errors import LockBusyError
from drsync.fsutil import ensure_dir
from drsync.site.layout import lock_name

# Inside the daemon several threads may try the same operation; flock is per open file
# description, so a second open() in the same process would succeed. This guards that.
_thread_locks: dict[str, threading.Lock] = {}
_registry_guard = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _registry_guard:
        return _thread_locks.setdefault(str(path), threading.Lock())


def read_lock_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, PermissionError):
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def operation_lock(lock_dir: Path, operation: str) -> Iterator[Path]:
    """Hold `<lock_dir>/<operation>.lock` for the duration, or raise LockBusyError at once."""
    ensure_dir(lock_dir)
    path = lock_dir / lock_name(operation)
    tlock = _thread_lock(path)
    if not tlock.acquire(blocking=False):
        raise LockBusyError(f"another drsync {operation} is already running in this process")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = read_lock_pid(path)
                who = f" (pid {pid})" if pid else ""
                raise LockBusyError(
                    f"another drsync {operation} is already running{who}; lock file {path}",
                    hint="wait for it to finish, or stop it; a lock is freed when its process exits",
                ) from None
            os.ftruncate(fd, 0)
            # The pid only names the holder in a "busy" message; the lock is the flock, which
            # no power cut outlives: no fsync (one a round on each side).
            os.write(fd, f"{os.getpid()}\n".encode())
            yield path
        finally:
            os.close(fd)  # releases the flock
    finally:
        tlock.release()


def lock_holder(lock_dir: Path, operation: str) -> int | None:
    """PID of the live process holding the lock, or None if it is free."""
    path = lock_dir / lock_name(operation)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_lock_pid(path) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
