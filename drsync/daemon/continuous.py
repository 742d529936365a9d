"""Continuous mode (issue #14): a round as soon as a commit lands, a restore as soon as a set
is delivered, through the daemon's one loop (drsync.daemon.main), never beside it.

Primary: a `DirWatcher` over the published tables' logs tells the `CommitTrigger` a commit
landed; the trigger wakes the backup job, at most once per `continuous-min-interval` (commits
arriving meanwhile are coalesced into the next set: one barrier, one consistent multi-table
cut, the same chain as scheduled rounds). The scheduled round keeps running every
backup-exec-time-interval: it is the rescan that ships what a missed event left behind, and
after every round the watch list is refreshed (new tables in published schemas).

Backpressure: while `BACKLOG_LIMIT` or more sets are cut but not known restored (queued or
delivered), the trigger cuts nothing more; commits coalesce on the tables themselves, so
memory and the number of sets stay bounded however fast commits arrive. The scheduled round
(and its own local-reserve-file-count rule) still ships what waits.

Standby: a `DirWatcher` over the inbox of manifests wakes the restore pass the moment a set
is delivered (no polling); over SSH the primary also asks for a restore after shipping.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from apscheduler.triggers.interval import IntervalTrigger

from drsync.config import Role, Settings
from drsync.daemon.watcher import DirWatcher, table_log_dirs
from drsync.errors import DrsyncError
from drsync.site.layout import MANIFEST_DIR
from drsync.site.state import PrimaryState, load_state

log = logging.getLogger("drsync.daemon.continuous")
BACKLOG_LIMIT = 4  # sets cut but not known restored at which no more are cut
INBOX_POLL_SECONDS = 2.0  # scheduled mode: the standby looks for newly delivered sets this often


def unrestored_sets(settings: Settings) -> int:
    state = load_state(settings.primary_metadata_destination, PrimaryState)
    return len(state.unshipped) + len(state.shipped)


class CommitTrigger:
    """Turns commit events into wakes of the backup job: at most one per `min_interval_s`,
    none while a round runs (the next is woken when it ends) or while the backlog is full."""

    def __init__(self, min_interval_s: float, wake: Callable[[], bool],
                 backlog: Callable[[], int], limit: int = BACKLOG_LIMIT) -> None:
        self.min_interval_s, self._wake, self._backlog, self.limit = min_interval_s, wake, backlog, limit
        self._cond = threading.Condition()
        self._dirty = False  # a commit landed that no round has started after
        self._running = False
        self._last_wake = 0.0
        self._closed = False
        self.held_back = False  # the backlog is full: commits coalesce (for /progress)
        self._thread = threading.Thread(target=self._run, name="commit-trigger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def commit_seen(self) -> None:
        with self._cond:
            self._dirty = True
            self._cond.notify()

    def pass_started(self) -> None:
        """A round starts: every commit seen so far lands before its barrier."""
        with self._cond:
            self._dirty, self._running = False, True

    def pass_done(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if not self._dirty or self._running:
                    self._cond.wait()
                    continue
                wait = self._last_wake + self.min_interval_s - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)  # coalesce what lands meanwhile into the same set
                    continue
                if self._backlogged():
                    self._cond.wait(self.min_interval_s)  # look again; a round's end notifies too
                    continue
                self._last_wake = time.monotonic()
                if not self._wake():
                    self._cond.wait(self.min_interval_s)

    def _backlogged(self) -> bool:
        try:
            full = self._backlog() >= self.limit
        except (DrsyncError, OSError) as e:  # the round reports an unreadable state itself
            log.debug("backlog unknown: %s", e)
            full = False
        if full != self.held_back:
            log.info("continuous mode: %s", f"{self.limit} or more sets wait to be restored; commits "
                     "coalesce until they are" if full else "backlog drained; cutting sets again")
        self.held_back = full
        return full


class ContinuousMode:
    """What continuous mode adds to a daemon of `role`: its watch, and on the primary the trigger.
    `wake()` runs the role's pass now and says whether it could (False: one runs)."""

    def __init__(self, settings: Settings, role: Role, wake: Callable[[], bool]) -> None:
        self.settings, self.role = settings, role
        self.trigger: CommitTrigger | None = None
        if role == "primary":
            self.trigger = CommitTrigger(settings.continuous_min_interval.total_seconds(), wake,
                                         lambda: unrestored_sets(self.settings))
            self.watcher = DirWatcher("tables", self.trigger.commit_seen)
        else:
            self.watcher = DirWatcher("inbox", lambda: None)

    def start(self, on_delivery: Callable[[], None] | None = None) -> None:
        if self.trigger is not None:
            self.trigger.start()
            self.watcher.start(table_log_dirs(self.settings))
        else:
            if on_delivery is not None:
                self.watcher.on_change = on_delivery
            self.watcher.start([self.settings.restore_metadata_destination / MANIFEST_DIR])
        log.info("continuous mode: watching %s", "the published tables' logs" if self.trigger
                 else "the inbox")

    def pass_started(self) -> None:
        if self.trigger is not None:
            self.trigger.pass_started()

    def pass_done(self, settings: Settings) -> None:
        """After a pass of the role: refresh the watch list (the primary), wake again if due."""
        self.settings = settings
        if self.trigger is not None:
            self.trigger.min_interval_s = settings.continuous_min_interval.total_seconds()
            self.watcher.watch(table_log_dirs(settings))
            self.trigger.pass_done()
        else:
            self.watcher.watch([settings.restore_metadata_destination / MANIFEST_DIR])

    def close(self) -> None:
        self.watcher.close()
        if self.trigger is not None:
            self.trigger.close()


class Loop(Protocol):
    """What follow_mode needs of the daemon (drsync.daemon.main.Daemon)."""

    role: Role
    continuous: ContinuousMode | None
    scheduler: Any

    @property
    def settings(self) -> Settings: ...
    def wake_now(self) -> bool: ...
    def watch_inbox(self) -> None: ...


def follow_mode(daemon: Loop) -> None:
    """Start or stop continuous mode's watches to match replication-mode (at start, on SIGHUP).
    The standby's inbox is watched (inotify) in continuous mode, polled in scheduled mode; the
    poll has its own executor: it must not queue behind a long restore pass."""
    wanted = daemon.settings.replication_mode == "continuous"
    if wanted and daemon.continuous is None:
        daemon.continuous = ContinuousMode(daemon.settings, daemon.role, daemon.wake_now)
        daemon.continuous.start(daemon.watch_inbox)
    elif not wanted and daemon.continuous is not None:
        daemon.continuous.close()
        daemon.continuous = None
    if daemon.role == "standby" and daemon.scheduler.running:
        with contextlib.suppress(LookupError):
            daemon.scheduler.remove_job("inbox-watch")
        if not wanted:
            daemon.scheduler.add_job(daemon.watch_inbox, IntervalTrigger(seconds=INBOX_POLL_SECONDS),
                                     id="inbox-watch", name="inbox-watch", executor="watch")
