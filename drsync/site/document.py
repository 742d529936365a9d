"""The show-progress document (shared spec: progress.md), as one typed model.

Built here from both sides' states and nowhere else; `show-progress --format json|table`,
`--watch` and `GET /progress` all render this one model, so a field added here reaches every
one of them (and the API's response model is this class, not a copy of it). The spec's field
names contain spaces: they are the aliases, and `as_json()` is what operators parse.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from drsync.site.state import PrimaryState, SideProgress, StandbyState, VerifyState, local_time

# drsync's additions after the spec's fields (roles/status.py fills them)
ADDED_FIELDS = ("role epoch", "site roles", "last role change", "rpo forecast", "verification",
                "replication mode")
DELAY_FIELDS = ("restore delay", "held back keys", "next apply time")


class ApplyStates(BaseModel):
    backupState: Literal["backuping", "stopped", "waiting", "abnormal"]
    restoreState: Literal["restoring", "stopped", "waiting", "abnormal"]
    backupSuccessTime: str
    restoreSuccessTime: str


class RpoForecast(BaseModel):
    """site/forecast.py's answer: when the standby is caught up, and the RPO until then."""

    backlogSets: int = 0
    backlogBytes: int = 0
    caughtUpInSeconds: int | None = None
    rpoForecastSeconds: int | None = None
    breachPredicted: bool = False
    note: str = ""


class Verification(BaseModel):
    """standby/continuous.py's findings: the standby verified restorable as of a barrier."""

    intervalSeconds: int | None = None  # verify-interval (None: off, or not readable here)
    verifiedBarrierTime: str = ""  # every replicated table verified restorable as of this barrier
    verifiedTables: int = 0  # tables whose last complete check was clean
    tables: int = 0  # replicated tables
    flagged: dict[str, list[str]] = {}  # table -> files missing/damaged and not repaired
    recent: list[str] = []  # newest findings and repairs

    @classmethod
    def of(cls, state: VerifyState | None, standby: StandbyState, interval_s: int | None) -> Verification:
        if state is None or interval_s is None:
            return cls()
        tables = [state.tables.get(name) for name in standby.tables]
        clean = [t for t in tables if t is not None and t.verified_barrier_ms is not None and not t.problems]
        return cls(intervalSeconds=interval_s,
                   verifiedBarrierTime=_ms_to_local(state.verified_barrier_ms),
                   verifiedTables=len(clean), tables=len(tables),
                   flagged={n: t.problems for n, t in sorted(state.tables.items()) if t.problems},
                   recent=state.recent[-5:])


class ProgressDocument(BaseModel):
    """The spec's document with exactly its field names, then drsync's additions."""

    model_config = ConfigDict(populate_by_name=True)
    primary_cluster: SideProgress = Field(alias="primary cluster")
    standby_cluster: SideProgress = Field(alias="standby cluster")
    apply: ApplyStates
    latestBarrierTime: str
    recovery_point_objective: str = Field(alias="recovery point objective")
    failover_recovery_point_time: str = Field(alias="failover recovery point time")
    role_epoch: int = Field(0, alias="role epoch")
    site_roles: dict[str, str] = Field(default_factory=dict, alias="site roles")
    last_role_change: str = Field("", alias="last role change")
    rpo_forecast: RpoForecast = Field(default_factory=RpoForecast, alias="rpo forecast")
    verification: Verification = Field(default_factory=Verification)
    replication_mode: str = Field("scheduled", alias="replication mode",
                                  description="replication-mode: scheduled or continuous")
    # delayed apply (standby/delay.py): present only while restore-delay is set or sets are held
    restore_delay: str | None = Field(None, alias="restore delay", description="seconds")
    held_back_keys: str | None = Field(None, alias="held back keys")
    next_apply_time: str | None = Field(None, alias="next apply time")

    def as_json(self) -> dict[str, Any]:
        """The document as operators parse it (spec names, spec order, additions last)."""
        doc = self.model_dump(by_alias=True)
        for name in DELAY_FIELDS:
            if doc[name] is None:
                del doc[name]
        return doc

    @property
    def abnormal(self) -> bool:
        return "abnormal" in (self.apply.backupState, self.apply.restoreState)


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


def build_document(primary: PrimaryState, standby: StandbyState) -> ProgressDocument:
    """The document from both sides' states (role fields are added by roles/status.py)."""
    p_side = primary.progress.model_copy(deep=True)
    s_side = standby.progress.model_copy(deep=True)
    # The spec's unrestoreKeys: shipped but not restored (sets still waiting to be shipped
    # are the primary's backlog, visible in its own state, not the standby's).
    pending = [k for k in primary.shipped if standby.last_key is None or k > standby.last_key]
    unrestored = ",".join(pending) if pending else "N/A"
    p_side.unrestoreKeys = s_side.unrestoreKeys = unrestored
    rpo = standby_rpo_seconds(standby)
    return ProgressDocument.model_validate({
        "primary cluster": p_side,
        "standby cluster": s_side,
        "apply": ApplyStates(
            backupState=primary.state,
            restoreState=standby.state,
            backupSuccessTime=primary.success_time,
            restoreSuccessTime=standby.success_time,
        ),
        "latestBarrierTime": _ms_to_local(standby.last_barrier_ms),
        "recovery point objective": str(rpo) if rpo is not None else "",
        "failover recovery point time": standby.failover_point,
    })


def membership_notes(primary: PrimaryState, standby: StandbyState) -> list[str]:
    """Lines for a person (show-progress --format table): recent DDL events, desynchronised
    tables. Not in the JSON document, whose fields are the DWS tool's."""
    lines = [f"DDL {e}" for e in standby.recent_ddl[-10:]]
    lines += [f"desynchronised {name} since {d.key} ({d.reason}; {d.operation})"
              for name, d in sorted(standby.desynced.items())]
    return lines
