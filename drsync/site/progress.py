"""Progress of a running step, and the show-progress document (docs/dws-migration.md).

A round or restore pass reports through a `ProgressTracker`: it keeps byte counters, turns
them into the DWS tool's rate strings, and saves the side's state at most twice a second, so
`show-progress` from another process sees live numbers without slowing the work down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from drsync.config import Settings
from drsync.errors import DrsyncError
from drsync.fsutil import atomic_write_bytes
from drsync.peer import both_sites_here, open_peer
from drsync.site.layout import remote_cache_name
from drsync.site.state import (
    PrimaryState,
    SideProgress,
    StandbyState,
    VerifyState,
    load_state,
    local_time,
)

log = logging.getLogger("drsync.site.progress")
UiHook = Callable[[str, int, int], None]  # (step, bytes done, bytes total)


STEP_GAP = 0.5  # seconds: how often `flush` saves at most (unless forced)


def _rate(nbytes: int, seconds: float) -> str:
    return f"{nbytes / max(seconds, 1e-6) / 1e6:.1f}MB/s"


class ProgressTracker:
    """Counters for one action; `flush` persists them through `save`."""

    def __init__(self, side: SideProgress, save: Callable[[], None], ui: UiHook | None = None,
                 *, throttle_steps: bool = False) -> None:
        self.side = side
        # Save a new step only if no save was made in the last STEP_GAP s (the next save,
        # at most STEP_GAP later while bytes move, or the finish, carries it): a round of a few
        # ms otherwise pays an fsync'd state save per step. `ui` hears every step at once.
        self._throttle_steps = throttle_steps
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
        if not self._throttle_steps or time.monotonic() - self._last_flush >= STEP_GAP:
            self.flush(force=True)
        elif self._ui:
            self._ui(name, self._done(), self.total)

    def _done(self) -> int:
        return self.produced if self.measure == "produced" else self.consumed

    def add(self, produced: int = 0, compressed: int = 0, consumed: int = 0) -> None:
        with self._lock:
            self.produced += produced
            self.compressed += compressed
            self.consumed += consumed
        self.flush()

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_flush < STEP_GAP:
            return
        with self._lock:
            self._last_flush = now
            elapsed = now - self.started
            done = self._done()
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


def read_states(settings: Settings) -> tuple[PrimaryState, StandbyState]:
    """Both sides' state: this host's from disk, the other's over the transport.

    With transport=local both are on this host. Over SSH the side this host plays is the one
    whose state file exists here; the other side's state is fetched through its agent and
    cached, so when it cannot be reached its last known state is shown (its `updateTime`
    tells how old it is) together with a warning.
    """
    p_meta, s_meta = settings.primary_metadata_destination, settings.restore_metadata_destination
    if both_sites_here(settings):
        return load_state(p_meta, PrimaryState), load_state(s_meta, StandbyState)
    if (p_meta / PrimaryState.FILE).exists():
        return load_state(p_meta, PrimaryState), _remote_state(settings, "standby", StandbyState, p_meta)
    if (s_meta / StandbyState.FILE).exists():
        return _remote_state(settings, "primary", PrimaryState, s_meta), load_state(s_meta, StandbyState)
    return PrimaryState(), StandbyState()


def read_verify_state(settings: Settings) -> VerifyState | None:
    """The standby's continuous verification state where this host can read it (the standby's
    own host, or both sites here); None elsewhere (it stays on the standby)."""
    s_meta = settings.restore_metadata_destination
    if both_sites_here(settings) or (s_meta / StandbyState.FILE).exists():
        state: VerifyState = load_state(s_meta, VerifyState)
        return state
    return None


def _remote_state(settings: Settings, peer: Literal["standby", "primary"], model: type[Any],
                  cache_dir: Path) -> Any:
    cache = cache_dir / remote_cache_name(model.FILE)
    try:
        with open_peer(settings, toward=peer) as other:
            raw = other.read("metadata", model.FILE)
        if raw is not None:
            atomic_write_bytes(cache, raw)
            return model.model_validate_json(raw)
        return model()
    except DrsyncError as e:
        log.warning("cannot read the %s's state (%s); showing the last known one", peer, e.message)
        return model.model_validate_json(cache.read_bytes()) if cache.exists() else model()
