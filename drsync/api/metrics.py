"""Prometheus metrics of a drsync daemon, in a registry of its own (never the global one).

Gauges that describe the sites (RPO, barrier, states, per-table lag, pending sets) are set
from both sides' state at scrape time, so they are never staler than the state files.
Counters and the duration histogram are fed by the daemon after each pass.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import get_args

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from drsync.site.document import standby_rpo_seconds
from drsync.site.forecast import Forecast
from drsync.site.state import PrimaryState, StandbyState, VerifyState

__all__ = ["CONTENT_TYPE", "DrsyncMetrics"]

_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class DrsyncMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # concurrent scrapes: update and render as one
        r = self.registry = CollectorRegistry()
        self.rpo = Gauge("drsync_rpo_seconds", "Seconds since the barrier of the newest set fully "
                         "restored on the standby (oldest per-table barrier)", registry=r)
        self.rpo_target = Gauge("drsync_rpo_target_seconds", "rpo-target (0 when not set)", registry=r)
        self.rpo_alert = Gauge("drsync_rpo_above_target", "1 when the RPO is above rpo-target", registry=r)
        self.last_barrier = Gauge("drsync_last_barrier_timestamp_seconds",
                                  "Unix time of the newest barrier restored on the standby", registry=r)
        self.shipped = Counter("drsync_bytes_shipped", "Bytes shipped to the standby by this daemon",
                               registry=r)
        self.applied = Counter("drsync_bytes_applied", "Bytes of sets applied by this daemon", registry=r)
        self.duration = Histogram("drsync_round_duration_seconds",
                                  "Duration of backup rounds / restore passes that did work",
                                  buckets=_BUCKETS, registry=r)
        self.pending = Gauge("drsync_sets_pending", "Sets built on the primary and not yet restored",
                             registry=r)
        self.state = Gauge("drsync_state", "1 for the state each side is in", ["side", "state"], registry=r)
        self.rpo_forecast = Gauge("drsync_rpo_forecast_seconds", "Highest RPO expected before the "
                                  "standby has restored every pending set (site/forecast.py)", registry=r)
        self.breach_predicted = Gauge("drsync_rpo_breach_predicted", "1 when that forecast is above "
                                      "rpo-target: a breach predicted before it happens", registry=r)
        self.backlog_bytes = Gauge("drsync_backlog_bytes", "Bytes of the sets built and not yet restored",
                                   registry=r)
        self.verified_barrier = Gauge("drsync_verified_barrier_timestamp_seconds", "Unix time of the "
                                      "barrier as of which every standby table was last verified "
                                      "restorable (standby/continuous.py; NaN: not yet)", registry=r)
        self.verify_flagged = Gauge("drsync_verification_flagged_tables", "Standby tables with files "
                                    "found missing or damaged and not repaired", registry=r)
        self.mode = Gauge("drsync_replication_mode", "1 for the replication-mode this daemon runs "
                          "(scheduled or continuous)", ["mode"], registry=r)
        self.table_lag = Gauge("drsync_table_lag_seconds", "Seconds since the barrier each standby "
                               "table is complete at", ["table"], registry=r)

    def set_mode(self, mode: str) -> None:
        for each in ("scheduled", "continuous"):
            self.mode.labels(mode=each).set(1 if each == mode else 0)

    def observe_pass(self, seconds: float, shipped: int = 0, applied: int = 0) -> None:
        self.duration.observe(seconds)
        self.shipped.inc(shipped)
        self.applied.inc(applied)

    def scrape(self, primary: PrimaryState, standby: StandbyState, rpo_target: timedelta | None,
               forecast: Forecast | None = None, verification: VerifyState | None = None) -> bytes:
        """Set the site gauges from both states and render everything (what /metrics serves)."""
        with self._lock:
            self.update(primary, standby, rpo_target)
            self.update_verification(verification, standby)
            if forecast is not None:
                nan = float("nan")
                self.rpo_forecast.set(nan if forecast.rpo_forecast_s is None else forecast.rpo_forecast_s)
                self.breach_predicted.set(1 if forecast.breach_predicted else 0)
                self.backlog_bytes.set(forecast.backlog_bytes)
            return self.render()

    def update(self, primary: PrimaryState, standby: StandbyState, rpo_target: timedelta | None,
               now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        rpo = standby_rpo_seconds(standby, now)
        self.rpo.set(rpo if rpo is not None else float("nan"))
        target = rpo_target.total_seconds() if rpo_target else 0.0
        self.rpo_target.set(target)
        self.rpo_alert.set(1 if rpo is not None and target and rpo > target else 0)
        self.last_barrier.set(standby.last_barrier_ms / 1000 if standby.last_barrier_ms else float("nan"))
        # Built and not yet restored, shipped or not (unrestoreKeys counts only the shipped ones).
        self.pending.set(len({k for k in primary.shipped + primary.unshipped
                              if standby.last_key is None or k > standby.last_key}))
        for side, current, model in (("primary", primary.state, PrimaryState),
                                     ("standby", standby.state, StandbyState)):
            for state in get_args(model.model_fields["state"].annotation):
                self.state.labels(side=side, state=state).set(1 if state == current else 0)
        self.table_lag.clear()
        now_ms = now.timestamp() * 1000
        for name, table in standby.tables.items():
            self.table_lag.labels(table=name).set(max(0.0, (now_ms - table.barrier_ms) / 1000))

    def update_verification(self, verification: VerifyState | None, standby: StandbyState) -> None:
        barrier = verification.verified_barrier_ms if verification is not None else None
        self.verified_barrier.set(barrier / 1000 if barrier is not None else float("nan"))
        flagged = [n for n, t in (verification.tables.items() if verification else []) if t.problems
                   and n in standby.tables]
        self.verify_flagged.set(len(flagged))

    def render(self) -> bytes:
        return generate_latest(self.registry)
