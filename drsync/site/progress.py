"""Progress of a running step, and the show-progress document (shared/spec/progress.md).

A round or restore pass reports through a `ProgressTracker`: it keeps byte counters, turns
them into the DWS tool's rate strings, and saves the side's state at most twice a second, so
`show-progress` from another process sees live numbers without slowing the work down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from drsync.config import Settings
from drsync.errors import DrsyncError
from drsync.fsutil import atomic_write_bytes
from drsync.site.state import (
    PrimaryState,
    SideProgress,
    StandbyState,
    load_state,
    local_time,
)

log = logging.getLogger("drsync.site.progress")
UiHook = Callable[[str, int, int], None]  # (step, bytes done, bytes total)


def _rate(nbytes: int, seconds: float) -> str:
    return f"{nbytes / max(seconds, 1e-6) / 1e6:.1f}MB/s"


class ProgressTracker:
    """Counters for one action; `flush` persists them through `save`."""

    def __init__(self, side: SideProgress, save: Callable[[], None], ui: UiHook | None = None) -> None:
        self.side = side
        self._save = save
        self._ui = ui
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self._last_flush = 0.0
        self.total = 0
        self.produced = 0
        self.compressed = 0
        self.consumed = 0
        self.measure = "consumed"  # which counter `progress` reports against `total`
        side.actionStartTime = local_time()
        side.actionEndTime = ""
        side.failedStep = "INIT"
        side.errorMsg = side.errorCode = ""
        side.progress = "0.00%"

    def step(self, name: str) -> None:
        with self._lock:
            self.side.currentStep = name
        self.flush(force=True)

    def add(self, produced: int = 0, compressed: int = 0, consumed: int = 0) -> None:
        with self._lock:
            self.produced += produced
            self.compressed += compressed
            self.consumed += consumed
        self.flush()

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_flush < 0.5:
            return
        with self._lock:
            self._last_flush = now
            elapsed = now - self.started
            done = self.produced if self.measure == "produced" else self.consumed
            finished = self.side.currentStep == "FINISH"
            pct = 100.0 * done / self.total if self.total else (100.0 if finished else 0.0)
            self.side.progress = f"{min(pct, 100.0):.2f}%"
            self.side.backupRate.producerRate = _rate(self.produced, elapsed)
            self.side.backupRate.compressRate = _rate(self.compressed, elapsed)
            self.side.backupRate.consumerRate = _rate(self.consumed, elapsed)
            self.side.updateTime = local_time()
            step = self.side.currentStep
        self._save()
        if self._ui:
            self._ui(step, done, self.total)

    def finish(self) -> None:
        self.side.actionEndTime = local_time()
        self.side.currentStep = "FINISH"
        self.flush(force=True)

    def fail(self, err: DrsyncError) -> None:
        self.side.failedStep = self.side.currentStep
        self.side.errorMsg = err.message
        self.side.errorCode = err.code
        self.side.actionEndTime = local_time()
        self.flush(force=True)


def _ms_to_local(ms: int | None) -> str:
    return local_time(ms / 1000) if ms is not None else ""


def standby_rpo_seconds(standby: StandbyState, now: datetime | None = None) -> int | None:
    """Seconds since the oldest per-table barrier (a table stuck behind counts with its own)."""
    barriers = [t.barrier_ms for t in standby.tables.values()]
    if standby.last_barrier_ms is not None:
        barriers.append(standby.last_barrier_ms)
    if not barriers:
        return None
    now_ms = (now or datetime.now(UTC)).timestamp() * 1000
    return max(0, int((now_ms - min(barriers)) / 1000))


def read_states(settings: Settings) -> tuple[PrimaryState, StandbyState]:
    """Both sides' state: this host's from disk, the other's over the transport.

    With transport=local both are on this host. Over SSH the side this host plays is the one
    whose state file exists here; the other side's state is fetched through its agent and
    cached, so when it cannot be reached its last known state is shown (its `updateTime`
    tells how old it is) together with a warning.
    """
    p_meta, s_meta = settings.primary_metadata_destination, settings.restore_metadata_destination
    if settings.transport == "local":
        return load_state(p_meta, PrimaryState), load_state(s_meta, StandbyState)
    if (p_meta / PrimaryState.FILE).exists():
        return load_state(p_meta, PrimaryState), _remote_state(settings, "standby", StandbyState, p_meta)
    if (s_meta / StandbyState.FILE).exists():
        return _remote_state(settings, "primary", PrimaryState, s_meta), load_state(s_meta, StandbyState)
    return PrimaryState(), StandbyState()


def _remote_state(settings: Settings, peer: Literal["standby", "primary"], model: type[Any],
                  cache_dir: Path) -> Any:
    from drsync.transport.ssh import SshTransport

    cache = cache_dir / f"{model.FILE}.remote-cache"
    try:
        with SshTransport(settings, peer=peer) as t:
            raw = t.read_bytes("metadata", model.FILE)
        if raw is not None:
            atomic_write_bytes(cache, raw)
            return model.model_validate_json(raw)
        return model()
    except DrsyncError as e:
        log.warning("cannot read the %s's state (%s); showing the last known one", peer, e.message)
        return model.model_validate_json(cache.read_bytes()) if cache.exists() else model()


def build_document(primary: PrimaryState, standby: StandbyState) -> dict[str, Any]:
    """The show-progress JSON document, with exactly the DWS tool's field names."""
    p_side = primary.progress.model_copy(deep=True)
    s_side = standby.progress.model_copy(deep=True)
    # The spec's unrestoreKeys: shipped but not restored (sets still waiting to be shipped
    # are the primary's backlog, visible in its own state, not the standby's).
    pending = [k for k in primary.shipped if standby.last_key is None or k > standby.last_key]
    unrestored = ",".join(pending) if pending else "N/A"
    p_side.unrestoreKeys = s_side.unrestoreKeys = unrestored
    rpo = standby_rpo_seconds(standby)
    return {
        "primary cluster": p_side.model_dump(),
        "standby cluster": s_side.model_dump(),
        "apply": {
            "backupState": primary.state,
            "restoreState": standby.state,
            "backupSuccessTime": primary.success_time,
            "restoreSuccessTime": standby.success_time,
        },
        "latestBarrierTime": _ms_to_local(standby.last_barrier_ms),
        "recovery point objective": str(rpo) if rpo is not None else "",
        "failover recovery point time": standby.failover_point,
    }


def membership_notes(primary: PrimaryState, standby: StandbyState) -> list[str]:
    """Lines for a person (show-progress --format table): recent DDL events, desynchronised
    tables. Not in the JSON document, whose fields are the DWS tool's."""
    lines = [f"DDL {e}" for e in standby.recent_ddl[-10:]]
    lines += [f"desynchronised {name} since {d.key} ({d.reason}; {d.operation})"
              for name, d in sorted(standby.desynced.items())]
    return lines


def is_abnormal(doc: dict[str, Any]) -> bool:
    return "abnormal" in (doc["apply"]["backupState"], doc["apply"]["restoreState"])
