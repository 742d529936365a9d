"""Directory watches of continuous mode (issue #14): inotify through `watchfiles`.

A `DirWatcher` is one thread watching a set of directories (not recursively) and calling
`on_change` once per batch of events. The set is replaced with `watch()` (the watch restarts
when it differs), so the daemon re-lists it after every rescan: a new published table is
watched from the round that first ships it. A directory that vanishes ends the watch; it is
restarted over the directories that still exist. Each (re)started watch calls `on_change`
once it is up, for what landed before (a directory created and filled before it was watched).

Watched on the primary (`table_log_dirs`): the log directory of every published table (named
by its table format, `TableFormat.log_dir`) and every directory holding a published table,
so a new table in a published schema wakes a round too. On the standby: the inbox of manifests.

Events are hints, never the record: a missed one (a full inotify queue, a filesystem without
inotify) is shipped by the periodic rescan (the scheduled round). Fault hook: while
DRSYNC_WATCH_PAUSE_FILE names an existing file, every event is dropped (drsync.faults).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import watchfiles

from drsync.config import Settings
from drsync.errors import DrsyncError
from drsync.faults import watch_paused
from drsync.primary.membership import plan_round
from drsync.tableformat import format_of

log = logging.getLogger("drsync.daemon.watcher")
DEBOUNCE_MS = 20  # events this close together come as one batch
STEP_MS = 20  # how often the watch looks at its stop event
START_MS = 1000  # once the watch is up (this long without events), look once at what is there
RETRY_SECONDS = 1.0  # after a watch failed (a directory vanished), start again this much later


def table_log_dirs(settings: Settings) -> set[Path]:
    """The log directories of the published tables and the directories holding them."""
    try:
        plan = plan_round(settings.primary_metadata_destination, settings.primary_warehouse,
                          settings.publication_list, settings.warehouse_layout)
    except DrsyncError as e:  # the round says the same, with its hint; the rescan still runs
        log.debug("watch list not refreshed: %s", e.message)
        return set()
    dirs: set[Path] = set()
    for ref in plan.tables:
        table_dir = ref.path(settings.primary_warehouse)
        fmt = format_of(table_dir)
        if fmt is not None:
            dirs.update((table_dir / fmt.log_dir, table_dir.parent))
    return dirs


class DirWatcher:
    """One thread: watches `dirs` and calls `on_change()` after each batch of events."""

    def __init__(self, name: str, on_change: Callable[[], None]) -> None:
        self.name, self.on_change = name, on_change
        self._dirs: frozenset[Path] = frozenset()
        self._restart = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{name}", daemon=True)
        self.batches = 0  # batches of events acted on (tests, /progress)

    def start(self, dirs: Iterable[Path] = ()) -> None:
        self._dirs = frozenset(dirs)
        self._thread.start()

    def watch(self, dirs: Iterable[Path]) -> None:
        """Watch exactly `dirs` from now on (restarts the watch only if the set changed)."""
        new = frozenset(dirs)
        if new != self._dirs:
            self._dirs = new
            self._restart.set()

    def close(self) -> None:
        self._closed.set()
        self._restart.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._closed.is_set():
            self._restart.clear()
            dirs = sorted(d for d in self._dirs if d.is_dir())
            if not dirs:
                self._restart.wait(RETRY_SECONDS)
                continue
            first = True
            try:
                for changes in watchfiles.watch(
                        *dirs, debounce=DEBOUNCE_MS, step=STEP_MS, stop_event=self._restart,
                        rust_timeout=START_MS, yield_on_timeout=True, recursive=False,
                        raise_interrupt=False, watch_filter=None, ignore_permission_denied=True):
                    if not changes:
                        if first:  # the watch is up: what landed before it is looked at once
                            first = False
                            self.on_change()
                        continue
                    if watch_paused():
                        continue  # fault hook: as if inotify had missed these events
                    self.batches += 1
                    self.on_change()
            except Exception as e:  # a watched directory vanished (a dropped table), or a bug
                log.debug("%s watch ended: %s; starting again", self.name, e)
                self._restart.wait(RETRY_SECONDS)
