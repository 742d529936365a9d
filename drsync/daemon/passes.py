"""What one pass of the daemon decides (Patroni's `run_cycle`): act, or say why not.

Each method returns the one line the daemon logs and its level, e.g.
`round 20261123_141502: 3 tables changed, 41.0 MB shipped in 4.2 s, RPO 63 s`,
`no round: inside suppressed window 01:00-03:00`,
`no round: 12 bundles wait unshipped (local-reserve-file-count=10); shipped 1 waiting set(s)`.

Rules, in the order a backup pass checks them: the daemon is shutting down; stop intent
(`stop-backup`, recorded by the CLI or the API: run_backup itself records `stopped`); inside a
suppressed window (local wall-clock time, from the injected clock); backpressure (more bundles
waiting unshipped than local-reserve-file-count: ship them, cut nothing); else a round.
Transient transport failures are retried check-balance-retry-times times with backoff, then
the state stays `abnormal` until a later pass succeeds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from datetime import time as clock_time
from typing import TypeVar

from drsync.api.metrics import DrsyncMetrics
from drsync.config import Role, Settings
from drsync.errors import AuthError, DrsyncError, HostKeyError, LockBusyError, StoppedError, TransportError
from drsync.peer import Peer, open_peer
from drsync.primary.fullsets import request_full_set_if_due
from drsync.primary.round import RoundResult, run_backup
from drsync.primary.roundmemory import RoundMemory
from drsync.sets.manifest import load_manifest
from drsync.site.document import standby_rpo_seconds
from drsync.site.layout import LOCK_DIR, MetadataLayout
from drsync.site.locks import operation_lock
from drsync.site.progress import UiHook, read_states
from drsync.site.retention import RetentionReport, run_retention
from drsync.site.state import PrimaryState, StandbyState, load_state, save_state, stop_requested
from drsync.standby.restore import RestoreResult, run_restore

log = logging.getLogger("drsync.daemon.main")
T = TypeVar("T")
Decision = tuple[str, int]  # the line to log, its level


def one_line(message: str) -> str:
    return "; ".join(part.strip() for part in message.splitlines() if part.strip())


def suppressed_window(settings: Settings, now: clock_time) -> str | None:
    """The suppressed window `now` falls in, as written ("01:00-03:00"), or None."""
    for start, end in settings.suppressed_windows:
        if settings.model_copy(update={"suppressed_windows": ((start, end),)}).in_suppressed_window(now):
            return f"{start:%H:%M}-{end:%H:%M}"
    return None


def bundles_waiting(settings: Settings) -> int:
    """Bundle files of sets built but not shipped (primary-media-destination/<key>/)."""
    state: PrimaryState = load_state(settings.primary_metadata_destination, PrimaryState)
    count = 0
    for key in state.unshipped:
        with contextlib.suppress(FileNotFoundError):
            count += sum(1 for e in os.scandir(settings.primary_media_destination / key) if e.is_file())
    return count


def round_pause(settings: Settings, now: datetime) -> tuple[str, bool]:
    """Why no new round may be cut right now ("" when one may), and whether the reason is
    backpressure (then the waiting sets are shipped instead). Shared by the daemon's passes
    and one-shot `drsync backup` (oneshot.py)."""
    window = suppressed_window(settings, now.time())
    if window:
        return f"inside suppressed window {window}", False
    waiting, limit = bundles_waiting(settings), settings.local_reserve_file_count
    if limit and waiting > limit:
        return f"{waiting} bundles wait unshipped (local-reserve-file-count={limit})", True
    return "", False


def ship_pending(settings: Settings, ui: UiHook | None = None, peer: Peer | None = None) -> int:
    """Ship the sets already built without cutting a new one: how backpressure drains."""
    return run_backup(settings, ui, peer, cut=False).sets_shipped


class Passes:
    """The decisions of one role. Runners and the clock are parameters so tests replace them."""

    def __init__(
        self, settings: Settings, role: Role, *, every_s: float, stopping: threading.Event,
        metrics: DrsyncMetrics, clock: Callable[[], datetime] = datetime.now,
        backup: Callable[..., RoundResult] = run_backup, restore: Callable[..., RestoreResult] = run_restore,
        ship: Callable[..., int] = ship_pending, retention: Callable[..., RetentionReport] = run_retention,
    ) -> None:
        self.settings, self.role, self.every_s = settings, role, every_s
        self.stopping, self.metrics, self.clock = stopping, metrics, clock
        self._backup, self._restore, self._ship, self._retention = backup, restore, ship, retention
        self.paused = ""  # why backup rounds do not start right now ("" when they do)
        self.next_due_ms: int | None = None  # restore-delay: when a held-back set becomes due
        self.backpressure = False
        # One peer (its transport) kept open across rounds (SSH connections and the remote agent
        # stay up); reopened after a transport failure or a reload. Only the pass thread touches it.
        self._link: Peer | None = None
        self._link_settings: Settings | None = None
        # What the last backup round ended with (round index, inventories: roundmemory.py), for
        # the next; dropped with a reload. Only the pass thread touches it.
        self._memory = RoundMemory()
        self._memory_settings = settings

    def backup(self) -> Decision:
        s = self.settings
        if self.stopping.is_set():
            return "no round: the daemon is shutting down", logging.INFO
        if stop_requested(s.primary_metadata_destination, "backup"):
            self.paused = "stopped by stop-backup"
            try:
                return f"no round: {self._backup(s).message}", logging.INFO  # records `stopped`
            except DrsyncError as e:
                return self._failure("backup", "no round", e)
        self.paused, backpressure = round_pause(s, self.clock())
        if self.paused and not backpressure:
            return f"no round: {self.paused}", logging.INFO
        if backpressure:
            self.backpressure = True
            try:
                shipped = self._retrying("shipping waiting sets",
                                         lambda: self._ship(s, self._step_hook(), self._transport()))
            except DrsyncError as e:
                return self._failure("backup", f"no round: {self.paused}; shipping them failed", e)
            return f"no round: {self.paused}; shipped {shipped} waiting set(s)", logging.INFO
        note = "backpressure released; " if self.backpressure else ""
        self.paused, self.backpressure = "", False
        if request_full_set_if_due(s, self.clock()):
            note += f"full set (every {s.full_backup_exec_time_interval}): every table copied again; "
        started = time.monotonic()
        try:
            result = self._retrying("backup round",
                                    lambda: self._backup(s, self._step_hook(), self._transport(),
                                                         memory=self._round_memory()))
        except DrsyncError as e:
            return self._failure("backup", f"{note}round failed", e)
        if result.key is None:
            return f"{note}no round: {result.message}", logging.INFO
        seconds = time.monotonic() - started
        self.metrics.observe_pass(seconds, shipped=result.bytes_shipped)
        line = (f"{note}round {result.key}: {result.tables_changed} tables changed, "
                f"{result.bytes_shipped / 1e6:.1f} MB shipped in {seconds:.1f} s, {self._rpo()}")
        if result.failed:
            line += f"; {len(result.failed)} table(s) left out: " + ", ".join(f.name for f in result.failed)
            return line, logging.WARNING
        return line, logging.INFO

    def restore(self) -> Decision:
        s = self.settings
        if self.stopping.is_set():
            return "no restore: the daemon is shutting down", logging.INFO
        if stop_requested(s.restore_metadata_destination, "restore"):
            try:
                return f"no restore: {self._restore(s).message}", logging.INFO  # records `stopped`
            except DrsyncError as e:
                return self._failure("restore", "no restore", e)
        started = time.monotonic()
        try:
            result = self._retrying("restore pass", lambda: self._restore(s, self._step_hook()))
        except DrsyncError as e:
            return self._failure("restore", "restore failed", e)
        self.next_due_ms = result.next_due_ms
        if not result.applied:
            return result.message, logging.INFO
        applied = 0
        for key in result.applied:
            with contextlib.suppress(DrsyncError):
                applied += load_manifest(
                    MetadataLayout(s.restore_metadata_destination).manifest(key)).data_bytes
        self.metrics.observe_pass(time.monotonic() - started, applied=applied)
        level = logging.WARNING if result.exit_code else logging.INFO
        return f"{result.message}, {self._rpo()}", level

    def retention(self) -> Decision:
        if self.stopping.is_set():
            return "no retention: the daemon is shutting down", logging.INFO
        try:
            return self._retention(self.settings, self.role).message, logging.INFO
        except DrsyncError as e:
            return f"retention failed: {one_line(e.message)} ({e.code})", logging.WARNING

    def _transport(self) -> Peer:
        if self._link is not None and self._link_settings is not self.settings:
            self.close_transport()  # the configuration was reloaded
        if self._link is None:
            self._link, self._link_settings = open_peer(self.settings), self.settings
        return self._link

    def _round_memory(self) -> RoundMemory:
        if self._memory_settings is not self.settings:  # reloaded: maybe other paths
            self._memory, self._memory_settings = RoundMemory(), self.settings
        return self._memory

    def close_transport(self) -> None:
        """Called by the pass thread after a failure, or by the daemon once no pass runs."""
        link, self._link = self._link, None
        if link is not None:
            with contextlib.suppress(Exception):  # closing a broken link must not fail the pass
                link.close()

    def _rpo(self) -> str:
        rpo = standby_rpo_seconds(read_states(self.settings)[1])
        return f"RPO {rpo} s" if rpo is not None else "RPO unknown (no set restored yet)"

    def _step_hook(self) -> UiHook:
        """Progress hook that ends the pass at the next step boundary once SIGTERM arrived."""
        seen = {"step": ""}

        def hook(step: str, done: int, total: int) -> None:
            if step != seen["step"]:
                seen["step"] = step
                if self.stopping.is_set() and step != "FINISH":
                    raise StoppedError(f"stopped before step {step}: the drsync daemon is shutting down",
                                       hint="the next pass resumes from there")

        return hook

    def _retrying(self, what: str, fn: Callable[[], T]) -> T:
        """Transient transport failures are retried check-balance-retry-times times, with backoff."""
        retries = self.settings.check_balance_retry_times
        delay = min(1.0, self.every_s)
        for attempt in range(retries + 1):
            try:
                return fn()
            except (HostKeyError, AuthError):
                self.close_transport()
                raise
            except TransportError as e:
                self.close_transport()  # a broken link is reopened by the next attempt
                if attempt == retries or self.stopping.is_set():
                    raise
                log.warning("%s: %s; retry %d of %d in %.1f s", what, one_line(e.message), attempt + 1,
                            retries, delay)
                if self.stopping.wait(delay):
                    raise
                delay = min(delay * 2, 60.0, self.every_s)
        raise AssertionError("unreachable")

    def _failure(self, op: str, what: str, e: DrsyncError) -> Decision:
        if isinstance(e, LockBusyError):  # a one-shot run from the CLI holds the lock: not a failure
            return f"{'no round' if op == 'backup' else 'no restore'}: {one_line(e.message)}", logging.WARNING
        if isinstance(e, StoppedError):
            self._mark_stopped(op)
            return f"{what}: {one_line(e.message)}; state stopped", logging.INFO
        hint = f"; hint: {one_line(e.hint)}" if e.hint else ""  # the page's "last errors" show it
        return (f"{what}: {one_line(e.message)} ({e.code}); {op} state abnormal, next attempt in "
                f"{self.every_s:g}s{hint}", logging.ERROR)

    def _mark_stopped(self, op: str) -> None:
        """A pass ended by a stop (intent or shutdown) is `stopped`, not `abnormal`."""
        meta = self.settings.metadata_dir("primary" if op == "backup" else "standby")
        model = PrimaryState if op == "backup" else StandbyState
        with contextlib.suppress(LockBusyError), operation_lock(meta / LOCK_DIR, op):
            state = load_state(meta, model)
            if state.state == "abnormal" and state.progress.errorCode == StoppedError.code:
                state.state = "stopped"
                save_state(meta, state)
