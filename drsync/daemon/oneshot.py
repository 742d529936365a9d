"""One-shot `drsync backup` / `drsync restore` (cron, systemd timers) decide as the daemon does.

The DWS tool is fired from cron every minute and relies on its keys to decide whether a run
does anything, so a one-shot run checks, in this order, before it touches anything:

* stop intent (`stop-backup` / `stop-restore`): the state is marked `stopped` and the run
  fails with StoppedByIntentError (exit 4) naming the command that resumes it;
* with `--now` nothing else: a round is forced;
* the daemon's own rules (passes.round_pause): a suppressed window
  (`new-disaster-recovery-suppressed-time-windows`) skips the run; backpressure
  (`local-reserve-file-count`) ships the waiting sets and cuts nothing;
* `backup-exec-time-interval`: a round starts only if the last one started at least that long
  ago (less ROUND_SLACK, so a cron line firing every interval is not skipped every other time
  by the process start-up time), counted from `<primary-metadata>/last-round.json`;
* `full-backup-exec-time-interval` (fullsets.py, as the daemon): a due full set is requested.

A skipped run returns one line saying why; the CLI prints it and exits 0.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from drsync.config import Role, Settings
from drsync.daemon.passes import round_pause
from drsync.errors import LockBusyError, StoppedByIntentError
from drsync.fsutil import atomic_write_json, read_json_object
from drsync.primary.fullsets import request_full_set_if_due
from drsync.site.layout import LAST_ROUND_FILE, LOCK_DIR, MetadataLayout
from drsync.site.locks import operation_lock
from drsync.site.state import PrimaryState, StandbyState, load_state, local_time, save_state, stop_requested

MAX_SLACK = timedelta(seconds=5)


def round_slack(every: timedelta) -> timedelta:
    """Tolerance on backup-exec-time-interval: 10% of it, at most 5 s."""
    return min(every / 10, MAX_SLACK)


@dataclass(frozen=True)
class BackupDecision:
    skip: str = ""  # why no round runs ("" = run one)
    ship_only: bool = False  # backpressure: ship the waiting sets, cut nothing
    note: str = ""  # said before the round's own message (e.g. a full set is due)


def refuse_if_stopped(settings: Settings, side: str) -> None:
    """Raise StoppedByIntentError when stop-backup / stop-restore is recorded for `side`."""
    op = "backup" if side == "primary" else "restore"
    meta = settings.metadata_dir("primary" if side == "primary" else "standby")
    if not stop_requested(meta, op):
        return
    since = ""
    with contextlib.suppress(OSError, ValueError):
        record = read_json_object(MetadataLayout(meta).intent(op)) or {}
        since = f" since {record.get('requested', '?')}"
    raise StoppedByIntentError(
        f"{op} is stopped by stop-{op}{since}: nothing done",
        hint=f"run `drsync start-{op} -c <config>` to resume (exit code 4 = stopped by intent)")


def last_round_started(settings: Settings) -> datetime | None:
    record = read_json_object(settings.primary_metadata_destination / LAST_ROUND_FILE) or {}
    with contextlib.suppress(KeyError, TypeError, ValueError):
        return datetime.fromisoformat(record["started"])
    return None


def decide_backup(settings: Settings, now: datetime, force: bool) -> BackupDecision:
    """What a one-shot backup does now; records the round's start when it runs one."""

    if not force:
        paused, backpressure = round_pause(settings, now)
        if backpressure:
            return BackupDecision(skip=paused, ship_only=True)
        if paused:
            return BackupDecision(skip=f"no round: {paused} (--now forces one)")
        every = settings.backup_exec_time_interval
        last = last_round_started(settings)
        if last is not None and timedelta(0) <= now - last < every - round_slack(every):
            return BackupDecision(skip=(
                f"no round: the last one started at {last:%Y-%m-%d %H:%M:%S}, "
                f"backup-exec-time-interval={_text(every)}; next from {last + every:%H:%M:%S} "
                "(--now forces one)"))
    note = ""
    if request_full_set_if_due(settings, now):
        every_full = _text(settings.full_backup_exec_time_interval)
        note = f"full set (every {every_full}): every table copied again; "
    atomic_write_json(settings.primary_metadata_destination / LAST_ROUND_FILE,
                      {"started": now.isoformat(), "local": local_time(now.timestamp())})
    return BackupDecision(note=note)


def _text(every: timedelta | None) -> str:
    if every is None:
        return "N/A"
    seconds = int(every.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def show_intent_in_state(settings: Settings, side: Role, stopped: bool) -> None:
    """After stop-/start-backup (-restore): show-progress shows `stopped` (or `waiting` again)
    at once, not only after the next run. Skipped while a run holds the lock: that run records
    the state itself at its next step boundary."""

    meta = settings.metadata_dir(side)
    model = PrimaryState if side == "primary" else StandbyState
    op = "backup" if side == "primary" else "restore"
    if not (meta / model.FILE).exists():
        return  # nothing has run on this side yet: no state to show
    with contextlib.suppress(LockBusyError), operation_lock(meta / LOCK_DIR, op):
        state = load_state(meta, model)
        if stopped and state.state in ("waiting", "abnormal"):
            state.state = "stopped"
        elif not stopped and state.state == "stopped":
            state.state = "waiting"
        else:
            return
        save_state(meta, state)
