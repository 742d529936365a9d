"""Named crash points for the fault-injection tests.

Production code calls `crash_point("apply.data_file")` at every step boundary and inside
multi-file writes. Normally this is a no-op costing one dict lookup. The crash tests set

    DRSYNC_CRASH_AT=<name-or-*>:<n>   kill -9 ourselves at the n-th hit (1-based) of that point
    DRSYNC_CRASH_COUNT=<file>         append every hit's name to <file> (to enumerate points)

so a test can first count the points a run passes, then kill a fresh run at each one in turn.
Killing with SIGKILL (not an exception) is the point: no `finally`, no flush, like a power cut.
"""

from __future__ import annotations

import os
import signal
import threading
from datetime import UTC, datetime, timedelta

_spec = os.environ.get("DRSYNC_CRASH_AT", "")
_count_file = os.environ.get("DRSYNC_CRASH_COUNT", "")
_hits = 0
_hits_lock = threading.Lock()  # the restore installs tables in threads: no hit may be lost
_target_name, _, _target_n = _spec.partition(":")
_target = int(_target_n) if _target_n.isdigit() else 0


def crash_point(name: str) -> None:
    global _hits
    if not _spec and not _count_file:
        return
    if _count_file:
        with open(_count_file, "a") as f:
            f.write(name + "\n")
    if _spec and (_target_name in ("*", name)):
        with _hits_lock:
            _hits += 1
            if _hits == _target:
                os.kill(os.getpid(), signal.SIGKILL)


def wall_clock() -> datetime:
    """Now (UTC), as the primary cuts its barrier.

    Test-only hook: DRSYNC_CLOCK_SHIFT_S=<seconds> (may be negative) shifts this clock, so the
    fault suite can step it backwards between rounds (tests/faults/test_clock.py). Read here
    and nowhere else; never set it in production.
    """
    shift = os.environ.get("DRSYNC_CLOCK_SHIFT_S", "")
    now = datetime.now(UTC)
    return now + timedelta(seconds=float(shift)) if shift else now


def watch_paused() -> bool:
    """Test-only hook: while the file named by DRSYNC_WATCH_PAUSE_FILE exists, the continuous
    mode's watcher (daemon/watcher.py) drops every event, as if inotify had missed it: the
    fault suite checks that the periodic rescan ships such a commit anyway."""
    flag = os.environ.get("DRSYNC_WATCH_PAUSE_FILE", "")
    return bool(flag) and os.path.exists(flag)
