"""RPO forecast: when will the standby be caught up, and will the RPO breach rpo-target first?

Inputs are what a site already records: the sets built and not yet restored (their keys name
their barriers, the history csv their bytes) and the recent rounds and restores in the same
csv (bytes and seconds each, so a measured rate and a per-set overhead). The model is the
pipeline as it runs: sets are shipped and applied one after the other, each costing the
per-set overhead plus its bytes at the measured rate. Walking the backlog in chain order gives
the time each set will be restored, and so the RPO just before it lands (that time minus the
barrier the standby then still shows). The highest of those is the forecast; above
rpo-target it is a predicted breach — said before it happens, while the backlog is in flight.

Deliberately simple: no smoothing beyond using the last rounds, and a set not yet measured
(the first round) gives no forecast rather than a guess.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import median

from drsync.config import Settings
from drsync.errors import DrsyncError
from drsync.sets.manifest import load_manifest
from drsync.site.layout import KEY_FORMAT, KEY_LENGTH, MetadataLayout
from drsync.site.state import PrimaryState, StandbyState, read_history

RECENT_ROWS = 20  # rounds and restores the rate is measured over


@dataclass(frozen=True)
class Forecast:
    backlog_sets: int
    backlog_bytes: int
    rate_bytes_per_s: float | None  # measured effective rate of ship + apply, None before any
    caught_up_in_s: float | None  # None: not enough measured to say
    rpo_forecast_s: float | None  # the highest RPO expected before the standby catches up
    breach_predicted: bool
    note: str  # one line for a person

    def as_json(self) -> dict[str, object]:
        return {
            "backlogSets": self.backlog_sets,
            "backlogBytes": self.backlog_bytes,
            "caughtUpInSeconds": _round(self.caught_up_in_s),
            "rpoForecastSeconds": _round(self.rpo_forecast_s),
            "breachPredicted": self.breach_predicted,
            "note": self.note,
        }


def _round(value: float | None) -> int | None:
    return None if value is None else int(value + 0.5)


def key_barrier_s(key: str) -> float | None:
    """A set key names its barrier's UTC second (YYYYMMDD_HHMMSS, sometimes bumped by one)."""
    try:
        return datetime.strptime(key[:KEY_LENGTH], KEY_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class PipelineRate:
    bytes_per_s: float
    overhead_s: float


def measured_rate(history: Iterable[dict[str, str]]) -> PipelineRate | None:
    """Effective rate and per-set overhead from the recent successful rounds and restores.

    Per action: bytes/s over the rows that moved bytes; overhead = the median duration of the
    rows that moved (almost) none. Ship and apply run one after the other for a set, so their
    times add: 1/rate = 1/ship + 1/apply (an action with no rows yet is left out)."""
    per_action: dict[str, list[tuple[int, float]]] = {}
    for row in history:
        if row.get("status") not in ("complete", "partial"):  # a set's status (sets/manifest.py)
            continue
        try:
            nbytes, seconds = int(row.get("bytes") or 0), float(row.get("seconds") or 0)
        except ValueError:
            continue
        per_action.setdefault(row.get("action", ""), []).append((nbytes, seconds))
    inverse_rate, overhead = 0.0, 0.0
    for action in ("backup", "restore"):
        rows = per_action.get(action, [])[-RECENT_ROWS:]
        moving = [(b, s) for b, s in rows if b >= 1 << 20 and s > 0]
        idle = [s for b, s in rows if b < 1 << 20]
        if idle:
            overhead += median(idle)
        if moving:
            inverse_rate += sum(s for _, s in moving) / sum(b for b, _ in moving)
    if inverse_rate == 0.0:
        return None
    return PipelineRate(bytes_per_s=1 / inverse_rate, overhead_s=overhead)


def forecast(pending: list[tuple[str, int]], restored_barrier_s: float | None, rate: PipelineRate | None,
             target_s: float | None, now_s: float) -> Forecast:
    """`pending`: (key, bytes) of every set built and not yet restored, in chain order."""
    backlog = sum(b for _, b in pending)
    rpo_now = None if restored_barrier_s is None else max(0.0, now_s - restored_barrier_s)
    if not pending:
        breach = target_s is not None and rpo_now is not None and rpo_now > target_s
        note = "caught up" + (f"; RPO {rpo_now:.0f} s is above rpo-target" if breach else "")
        return Forecast(0, 0, rate.bytes_per_s if rate else None, 0.0, rpo_now, breach, note)
    if rate is None:
        return Forecast(len(pending), backlog, None, None, None, False,
                        f"{len(pending)} set(s) pending; no round measured yet to forecast from")
    t, shown, peak = now_s, restored_barrier_s, rpo_now or 0.0
    for key, nbytes in pending:
        t += rate.overhead_s + nbytes / rate.bytes_per_s
        if shown is not None:
            peak = max(peak, t - shown)
        shown = key_barrier_s(key) or shown
    caught_up = t - now_s
    breach = target_s is not None and peak > target_s
    note = (f"{len(pending)} set(s), {backlog / 1e6:.1f} MB pending at {rate.bytes_per_s / 1e6:.1f} MB/s: "
            f"caught up in ~{caught_up:.0f} s, RPO up to ~{peak:.0f} s")
    if breach and target_s is not None:
        note += f": above rpo-target {target_s:g} s (breach predicted)"
    return Forecast(len(pending), backlog, rate.bytes_per_s, caught_up, peak, breach, note)


def _manifest_bytes(settings: Settings, key: str) -> int:
    """A set being shipped has no csv row yet: its manifest (written before SHIP) has the size."""
    path = MetadataLayout(settings.primary_metadata_destination).manifest(key)
    try:
        return load_manifest(path).data_bytes
    except (OSError, DrsyncError):
        return 0


def site_forecast(settings: Settings, primary: PrimaryState, standby: StandbyState,
                  now_s: float | None = None) -> Forecast:
    """The forecast from what this host can read: both sides' history csv where present (with
    transport=ssh only this host's side; the rate then comes from its own rows)."""
    history: list[dict[str, str]] = []
    for meta in (settings.primary_metadata_destination, settings.restore_metadata_destination):
        history += read_history(meta / settings.backuprestoreinfo_file)[-4 * RECENT_ROWS:]
    set_bytes = {row.get("key", ""): int(row.get("bytes") or 0)
                 for row in history if row.get("action") == "backup" and (row.get("bytes") or "").isdigit()}
    keys = sorted({k for k in primary.shipped + primary.unshipped
                   if standby.last_key is None or k > standby.last_key})
    pending = [(k, set_bytes[k] if k in set_bytes else _manifest_bytes(settings, k)) for k in keys]
    restored = standby.last_barrier_ms / 1000 if standby.last_barrier_ms is not None else None
    target = settings.rpo_target.total_seconds() if settings.rpo_target else None
    return forecast(pending, restored, measured_rate(history), target,
                    now_s if now_s is not None else time.time())
