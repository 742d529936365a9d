"""drsync.site.locks: one operation at a time, the holder's PID named, freed when the holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drsync.errors import LockBusyError
from drsync.site.locks import lock_holder, operation_lock, read_lock_pid

REPO = Path(__file__).resolve().parents[3]

_HOLDER = """
import sys, time
from pathlib import Path
from drsync.site.locks import operation_lock
with operation_lock(Path(sys.argv[1]), sys.argv[2]):
    print("locked", flush=True)
    time.sleep(120)
"""


def start_holder(lock_dir: Path, operation: str) -> subprocess.Popen[str]:
    """A separate process that takes the lock and sleeps; returns once it holds it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock_dir), operation],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert p.stdout is not None
    line = p.stdout.readline()
    if line.strip() != "locked":
        p.kill()
        _, err = p.communicate()
        raise AssertionError(f"lock holder did not start: {line!r} {err}")
    return p


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    lock_dir = tmp_path / "locks"
    p = start_holder(lock_dir, "backup")
    try:
        yield lock_dir, p
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate(timeout=10)


def kill_and_reap(p: subprocess.Popen[str]) -> None:
    os.kill(p.pid, signal.SIGKILL)
    p.communicate(timeout=10)
    assert p.returncode == -signal.SIGKILL


def test_lock_taken_writes_our_pid(tmp_path: Path) -> None:
    lock_dir = tmp_path / "a" / "locks"  # created on demand
    with operation_lock(lock_dir, "restore") as path:
        assert path == lock_dir / "restore.lock"
        assert read_lock_pid(path) == os.getpid()
    assert lock_holder(lock_dir, "restore") is None


def test_second_lock_from_other_process_names_pid(
    holder: tuple[Path, subprocess.Popen[str]],
) -> None:
    lock_dir, p = holder
    with pytest.raises(LockBusyError) as caught, operation_lock(lock_dir, "backup"):
        pytest.fail("took a lock another process holds")
    msg = str(caught.value)
    assert f"pid {p.pid}" in msg
    assert "backup" in msg
    assert str(lock_dir / "backup.lock") in msg
    assert caught.value.code == "DRS110"
    assert caught.value.hint
    # Our failed attempt must not have overwritten the holder's PID in the file.
    assert read_lock_pid(lock_dir / "backup.lock") == p.pid


def test_lock_holder_reports_live_pid(holder: tuple[Path, subprocess.Popen[str]]) -> None:
    lock_dir, p = holder
    assert lock_holder(lock_dir, "backup") == p.pid
    assert lock_holder(lock_dir, "restore") is None  # another operation, no file


def test_other_operation_is_independent(holder: tuple[Path, subprocess.Popen[str]]) -> None:
    lock_dir, _ = holder
    with operation_lock(lock_dir, "restore"):
        assert lock_holder(lock_dir, "restore") == os.getpid()


def test_lock_free_after_holder_sigkilled(holder: tuple[Path, subprocess.Popen[str]]) -> None:
    lock_dir, p = holder
    kill_and_reap(p)
    # The lock file with the dead PID is still there ...
    assert read_lock_pid(lock_dir / "backup.lock") == p.pid
    # ... but nobody holds the flock.
    assert lock_holder(lock_dir, "backup") is None
    with operation_lock(lock_dir, "backup") as path:
        assert read_lock_pid(path) == os.getpid()
        assert lock_holder(lock_dir, "backup") == os.getpid()


def test_lock_holder_none_without_file(tmp_path: Path) -> None:
    assert lock_holder(tmp_path, "backup") is None


def test_same_process_second_lock_refused_and_released(tmp_path: Path) -> None:
    with (
        operation_lock(tmp_path, "backup"),
        pytest.raises(LockBusyError, match="already running in this process"),
        operation_lock(tmp_path, "backup"),
    ):
        pytest.fail("nested lock of the same operation was granted")
    # Released after the block, even though an attempt failed inside it.
    with operation_lock(tmp_path, "backup"):
        pass


def test_lock_released_on_exception(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), operation_lock(tmp_path, "backup"):
        raise RuntimeError("round failed")
    assert lock_holder(tmp_path, "backup") is None
    with operation_lock(tmp_path, "backup"):
        pass


def test_threads_exclude_each_other(tmp_path: Path) -> None:
    """Inside one process (the daemon) only one thread at a time holds an operation."""
    inside = 0
    max_inside = 0
    busy = 0
    guard = threading.Lock()
    start = threading.Barrier(4)

    def worker() -> None:
        nonlocal inside, max_inside, busy
        start.wait()
        for _ in range(20):
            try:
                with operation_lock(tmp_path, "backup"):
                    with guard:
                        inside += 1
                        max_inside = max(max_inside, inside)
                    time.sleep(0.001)
                    with guard:
                        inside -= 1
            except LockBusyError:
                with guard:
                    busy += 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max_inside == 1
    assert busy > 0  # contention actually happened


def test_read_lock_pid_garbage(tmp_path: Path) -> None:
    f = tmp_path / "x.lock"
    f.write_text("not a pid\n")
    assert read_lock_pid(f) is None
    f.write_text("1234\n")
    assert read_lock_pid(f) == 1234
    assert read_lock_pid(tmp_path / "missing.lock") is None
