"""`drsync daemon`: the schedule of this host's role and its HTTP API, in one process.

Patroni's model: commands and the API only *record intent* (the stop flags of
drsync.site.state); one loop executes. The loop is an APScheduler BackgroundScheduler with a single
worker thread, so passes never overlap (`max_instances=1`, missed runs coalesced): backup
rounds on the primary or restore passes on the standby, and retention on both. Every pass
logs exactly one line saying what it decided (drsync.daemon.passes).

Signals belong to the main thread: SIGTERM/SIGINT stop scheduling, let the running pass finish
its current step (a progress hook raises StoppedError at the next step boundary, which the
crash-safe ordering of rounds and restores makes as harmless as a kill) and exit 0. SIGHUP
reloads the configuration if it is valid, else logs why and keeps the old one. uvicorn runs
in a thread with its own signal handling switched off (drsync.api.app.ApiServer).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from drsync.api.app import ApiServer
from drsync.api.metrics import DrsyncMetrics
from drsync.config import Role, Settings, load_settings
from drsync.config.envfile import load_side_env
from drsync.daemon.continuous import ContinuousMode, follow_mode
from drsync.daemon.passes import Decision, Passes, one_line
from drsync.errors import ConfigError, DrsyncError
from drsync.faults import wall_clock
from drsync.fsutil import read_json_object
from drsync.logsetup import setup_logging
from drsync.roles.follow import choose_config, plays
from drsync.site.document import standby_rpo_seconds
from drsync.site.host_role import detect_role
from drsync.site.layout import LAST_RESTORED, MANIFEST_DIR, manifest_key
from drsync.site.progress import read_states
from drsync.site.rpo_history import STEP_S as RPO_STEP_S
from drsync.site.rpo_history import record_rpo
from drsync.site.state import PrimaryState, StandbyState, local_time
from drsync.standby.continuous import TICK_SECONDS as VERIFY_TICK_SECONDS
from drsync.standby.continuous import Verifier

log = logging.getLogger("drsync.daemon.main")
RETENTION_EVERY = timedelta(hours=1)
FOLLOWED_ENV = "DRSYNC_FOLLOWED_ROLE_CHANGE"  # set in a daemon restarted by a role change
FOLLOW_BIND_SECONDS = 30.0
# A role change is looked for this often as well as after each main pass: in continuous mode
# with long rescans and no commits, passes can be minutes apart (one stat and a small read).
ROLE_CHECK_SECONDS = 2.0
STATE_CACHE_SECONDS = 1.0  # /progress, /healthz, /metrics read both states at most this often


@dataclass
class JobStatus:
    last_decision: str = ""
    decided_at: str = ""


class Daemon:
    """Scheduler, signals, reload, and what the API reads. `passes_options` go to Passes
    (clock and runners, for tests)."""

    def __init__(self, settings: Settings, role: Role, *, tick: float | None = None,
                 log_to_file: bool = False, **passes_options: Any) -> None:
        self.role, self.tick, self.log_to_file = role, tick, log_to_file
        self.main_job = "backup" if role == "primary" else "restore"
        self.metrics = DrsyncMetrics()
        self.stopping = threading.Event()
        self.reload_note = ""
        every = self.intervals(settings)
        self.passes = Passes(settings, role, every_s=every[self.main_job].total_seconds(),
                             stopping=self.stopping, metrics=self.metrics, **passes_options)
        self.jobs = {name: JobStatus() for name in every}
        self._signals: list[int] = []
        self.api: ApiServer | None = None  # set by serve(); moved by a reload that changes its address
        self.serving = False
        self._running: set[str] = set()  # jobs whose pass is running now
        self._woken_for = ""  # newest delivered key watch_inbox has already woken the restore for
        self.follow_from: tuple[Path, str | None] | None = None  # (config, --role) given at start
        self.restart_into: Path | None = None  # set when the role changed under this daemon
        self._cache: tuple[float, PrimaryState, StandbyState] | None = None
        self._cache_lock = threading.Lock()
        self._rpo_sampled_at = 0.0  # last RPO history sample (site/rpo_history.py), this process
        self.recent_errors: deque[str] = deque(maxlen=10)  # warnings and errors of passes, for the page
        # the standby's continuous verification (standby/continuous.py): small steps, own thread
        self.verifier = Verifier(settings, tick or VERIFY_TICK_SECONDS) if role == "standby" else None
        self.continuous: ContinuousMode | None = None  # replication-mode=continuous: its watches
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(1), "watch": ThreadPoolExecutor(1),
                       "verify": ThreadPoolExecutor(1)}, timezone=UTC,
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None})

    @property
    def settings(self) -> Settings:
        return self.passes.settings

    # ---------------------------------------------------------------- schedule

    def intervals(self, settings: Settings | None = None) -> dict[str, timedelta]:
        s = settings or self.settings
        main = s.backup_exec_time_interval if self.role == "primary" else s.restore_interval
        every = {self.main_job: main, "retention": RETENTION_EVERY}
        if self.tick:
            every = {name: timedelta(seconds=self.tick) for name in every}
        return every

    def schedule_text(self) -> str:
        return ", ".join(f"{name} every {every.total_seconds():g}s"
                         for name, every in self.intervals().items())

    def start_scheduler(self) -> None:
        now = datetime.now(UTC)
        for name, every in self.intervals().items():
            first = now if name == self.main_job else now + every
            self.scheduler.add_job(self.run_pass, IntervalTrigger(seconds=every.total_seconds()), args=[name],
                                   id=name, name=name, next_run_time=first)
        if self.role == "standby":  # its own thread: a step never delays a restore pass
            step = IntervalTrigger(seconds=self.tick or VERIFY_TICK_SECONDS)
            self.scheduler.add_job(self.verify_step, step, id="verify", name="verify", executor="verify")
        self.scheduler.start()
        follow_mode(self)

    def watch_inbox(self) -> None:
        """Restore as soon as a new set is delivered instead of up to restore-interval later.

        Without it the two schedules add up: a set shipped just after a restore pass waits a
        whole restore-interval (bench/rpo.py measured p99 120 s at 1m/1m). One listdir of the
        inbox every few seconds; a set is woken for once, so one that cannot be restored (a
        gap, a refusal) is retried on the normal schedule, not every poll."""
        meta = self.settings.restore_metadata_destination
        try:
            names = os.listdir(meta / MANIFEST_DIR)
        except OSError:
            return
        last = str((read_json_object(meta / LAST_RESTORED) or {}).get("key") or "")
        newest = max((k for n in names if (k := manifest_key(n)) is not None), default="")
        # While a pass runs a wake would be dropped (one instance per job): look again after it.
        if newest > max(last, self._woken_for) and self.main_job not in self._running:
            self._woken_for = newest
            log.debug("set %s delivered: restoring now", self._woken_for)
            self.wake()
        due = self.passes.next_due_ms  # restore-delay: restore as soon as a held set is due
        if due is not None and wall_clock().timestamp() * 1000 >= due and self.main_job not in self._running:
            self.passes.next_due_ms = None
            log.debug("a set held back by restore-delay is due: restoring now")
            self.wake()

    def verify_step(self) -> None:
        """One bounded step of continuous verification; its findings go to the page too."""
        if self.verifier is None:
            return
        self.verifier.settings = self.settings  # follows a SIGHUP reload (verify-interval)
        try:
            lines = self.verifier.tick()
        except Exception as e:  # a bug or an unreadable state file: say so, keep the loop alive
            log.debug("verification step crashed", exc_info=True)
            lines = [f"verification step failed: {type(e).__name__}: {e}"]
            log.error("%s", lines[0])
        for line in lines:
            self.recent_errors.append(f"{local_time()} verify: {line}")
        if lines:
            self._cache = None

    def wake(self) -> None:
        """Run the role's pass now (after intent was recorded), if the loop runs."""
        if self.loop_running():
            with contextlib.suppress(LookupError):
                self.scheduler.modify_job(self.main_job, next_run_time=datetime.now(UTC))

    def wake_now(self) -> bool:
        """Continuous mode: run the role's pass now; False while one runs (it is woken after)."""
        if self.main_job in self._running or not self.loop_running():
            return False
        self.wake()
        return True

    def loop_running(self) -> bool:
        return bool(self.scheduler.running) and not self.stopping.is_set()

    def run_pass(self, job: str) -> str:
        """One pass of `job`; logs and records the one line saying what it decided."""
        passes: dict[str, Callable[[], Decision]] = {
            "backup": self.passes.backup, "restore": self.passes.restore, "retention": self.passes.retention}
        self._running.add(job)
        if self.continuous is not None and job == self.main_job:
            self.continuous.pass_started()
        try:
            line, level = passes[job]()
        except Exception as e:  # a bug: say so in one line, keep the loop and the API alive
            log.debug("%s pass crashed", job, exc_info=True)
            line, level = f"{job} pass failed with an internal error: {type(e).__name__}: {e}", logging.ERROR
        finally:
            self._running.discard(job)
        log.log(level, "%s", line)
        self.jobs[job].last_decision, self.jobs[job].decided_at = line, local_time()
        if level >= logging.WARNING:
            self.recent_errors.append(f"{local_time()} {job}: {line}")
        self._cache = None
        if job == self.main_job:
            self._record_rpo()
            self._check_role()
            if self.continuous is not None:
                self.continuous.pass_done(self.settings)
                if self.role == "standby":
                    self.watch_inbox()  # a set delivered while the pass ran
        return line

    def _record_rpo(self) -> None:
        """One sample of the RPO history the dashboard charts (bounded; see site/rpo_history.py)."""
        now, step = time.time(), self.tick or RPO_STEP_S  # --tick samples as often as it runs
        if now - self._rpo_sampled_at < step:
            return  # not due: the history file is not even read
        try:
            rpo = standby_rpo_seconds(self.states()[1])
            if record_rpo(self.settings.metadata_dir(self.role), rpo, now, step_s=step):
                self._rpo_sampled_at = now
        except (DrsyncError, OSError) as e:  # a chart must never stop replication
            log.debug("RPO history not recorded: %s", e)

    def _check_role(self) -> None:
        """After a role change, restart into the file whose side this host plays now."""

        if self.follow_from is None or self.restart_into is not None:
            return
        try:
            if plays(self.settings, self.role):
                return
        except (DrsyncError, OSError, ValueError) as e:  # the passes say it in their own line
            log.debug("role not checked: %s", e)
            return
        try:
            settings, role = choose_config(*self.follow_from)
        except DrsyncError:
            return
        same = (settings.source_file, role) == (self.settings.source_file, self.role)
        if same or not plays(settings, role):
            return  # nothing better to run: the passes say why they refuse
        log.info("role change: this host now plays the %s as %s describes it; restarting into it",
                 role, settings.source_file)
        self.restart_into = settings.source_file
        self._signals.append(signal.SIGTERM)  # stop the way SIGTERM does, then exec

    # ---------------------------------------------------------------- what the API reads

    def states(self) -> tuple[PrimaryState, StandbyState]:
        with self._cache_lock:
            cached = self._cache
            if cached is None or time.monotonic() - cached[0] > STATE_CACHE_SECONDS:
                primary, standby = read_states(self.settings)
                cached = self._cache = (time.monotonic(), primary, standby)
            return cached[1], cached[2]

    def status(self) -> dict[str, Any]:
        jobs: dict[str, Any] = {}
        every = self.intervals()
        for name, job in self.jobs.items():
            scheduled = self.scheduler.get_job(name) if self.scheduler.running else None
            next_run = getattr(scheduled, "next_run_time", None)
            jobs[name] = {"every_seconds": every[name].total_seconds(), "last_decision": job.last_decision,
                          "decided_at": job.decided_at,
                          "next_run": local_time(next_run.timestamp()) if next_run else ""}
        return {"role": self.role, "pid": os.getpid(), "loop_running": self.loop_running(),
                "replication_mode": self.settings.replication_mode,
                "config": str(self.settings.source_file), "reload": self.reload_note,
                "paused": self.passes.paused, "jobs": jobs, "recent_errors": list(self.recent_errors)}

    # ---------------------------------------------------------------- process

    def reload(self) -> None:
        path = self.settings.source_file
        try:
            new = load_settings(path)
            detect_role(new, self.role)
        except DrsyncError as e:
            self.reload_note = f"{local_time()}: not reloaded: {one_line(e.message)}"
            log.error("SIGHUP: configuration %s not reloaded, keeping the previous one: %s",
                      path, one_line(e.message))
            return
        old, old_every = self.settings, self.intervals()
        self.passes.settings = new
        self.passes.every_s = self.intervals()[self.main_job].total_seconds()
        if self.log_to_file:
            setup_logging(new, self.role)
        for name, every in self.intervals().items():
            if every != old_every[name] and self.scheduler.running:
                self.scheduler.reschedule_job(name, trigger=IntervalTrigger(seconds=every.total_seconds()))
        follow_mode(self)
        note = self._rebind_api(old, new)
        self.reload_note = f"{local_time()}: reloaded{note}"
        log.info("SIGHUP: configuration %s reloaded: %s%s", path, self.schedule_text(), note)

    def api_address(self, settings: Settings) -> tuple[str, int] | None:
        port = settings.backup_port if self.role == "primary" else settings.restore_port
        return (settings.api_listen, port) if port else None

    def _bind(self, address: tuple[str, int]) -> ApiServer:
        """The API socket. After a role change the daemon of the other role (transport=local:
        on this host) may still hold this port for a few seconds while it restarts too."""

        deadline = time.monotonic() + (FOLLOW_BIND_SECONDS if os.environ.get(FOLLOWED_ENV) else 0)
        while True:
            try:
                return ApiServer(self, *address)
            except DrsyncError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def _rebind_api(self, old: Settings, new: Settings) -> str:
        """Move the HTTP API to a changed address: bind the new socket first, so a busy port
        keeps the API where it was (and says so) instead of leaving the daemon unreachable."""
        before, after = self.api_address(old), self.api_address(new)
        if before == after or not self.serving:
            return ""

        moved = None
        if after is not None:
            try:
                moved = ApiServer(self, *after)
            except DrsyncError as e:
                log.error("SIGHUP: %s; the API stays on its previous address", one_line(e.message))
                return f" (API not moved: {one_line(e.message)})"
            moved.start()
        if self.api is not None:
            self.api.stop()
        self.api = moved
        return f" (HTTP API now on {moved.url})" if moved else " (HTTP API off)"

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)  # acted on by the main loop, never inside the handler

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT; SIGHUP reloads. Returns the exit code (0)."""

        s = self.settings
        address = self.api_address(s)
        api = self.api = self._bind(address) if address else None  # fails here if the port is busy
        self.serving = True
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        self.start_scheduler()
        if api is not None:
            api.start()
        log.info("daemon started (pid %d): %s, %s; %s", os.getpid(), self.role, self.schedule_text(),
                 f"HTTP API on {api.url}" if api else "HTTP API off (no backup-port/restore-port)")
        role_checked = time.monotonic()
        while True:
            time.sleep(0.2)
            if time.monotonic() - role_checked >= ROLE_CHECK_SECONDS:
                role_checked = time.monotonic()
                self._check_role()
            while self._signals:
                signum = self._signals.pop(0)
                if signum == signal.SIGHUP:
                    self.reload()
                    continue
                log.info("%s: no new passes; waiting for the running step to finish",
                         signal.Signals(signum).name)
                self.stopping.set()
                self.scheduler.shutdown(wait=True)  # the API keeps answering meanwhile (/healthz: 503)
                self.passes.close_transport()
                if self.continuous is not None:
                    self.continuous.close()
                if self.verifier is not None:
                    self.verifier.close()
                if self.api is not None:
                    self.api.stop()
                log.info("daemon stopped")
                return 0


def start(config: Path, role: str | None = None, tick: float | None = None) -> int:
    """Load and check everything, then run until SIGTERM (what `drsync daemon` calls).

    After a role change the daemon follows the DR state (roles/follow.py): it runs with the
    swapped twin of `config` when that is the file whose side this host now plays, and a
    running daemon whose role changes under it restarts itself into that file."""

    if tick is not None and tick <= 0:
        raise ConfigError(f"--tick {tick}: must be > 0 seconds")
    settings, chosen = choose_config(config, role)
    setup_logging(settings, chosen)

    load_side_env(settings, chosen)  # primary-env / standby-env, before any work starts
    if settings.source_file != config:
        log.info("role change followed: this host now plays the %s as %s describes it",
                 chosen, settings.source_file)
    daemon = Daemon(settings, chosen, tick=tick, log_to_file=True)
    daemon.follow_from = (config, role)
    code = daemon.serve()
    if daemon.restart_into is not None:
        # The new role's schedule and API start in a fresh process (sockets are not inherited).
        os.execve(sys.executable, list(sys.orig_argv), {**os.environ, FOLLOWED_ENV: "1"})
    return code
