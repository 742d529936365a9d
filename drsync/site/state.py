"""Durable state of each side: JSON written atomically, plus the set history csv.

Layout under a metadata destination (primary-/restore-metadata-destination):

    primary-state.json            the primary's state (PrimaryState), or
    standby-state.json            the standby's (StandbyState): distinct names, so a host
                                  knows its side even when both sites use the same paths
    verify-state.json             the standby's continuous verification (VerifyState)
    file-hashes/<table dir>.json  standby only: the recorded hash of each replicated file
    manifests/<key>.manifest.json manifests (on the standby: the inbox, written last)
    tables/<db>/<schema>/<table>.json   primary only: what the standby holds of a table
    locks/<operation>.lock        one lock per operation, with the holder's PID
    backuprestoreinfo.csv         one row per set
"""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from drsync.fsutil import atomic_write_json, ensure_dir, read_json
from drsync.site.layout import (
    PRIMARY_STATE_FILE,
    STANDBY_STATE_FILE,
    VERIFY_STATE_FILE,
    intent_name,
)


def local_time(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else datetime.now().timestamp()).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


class Rates(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    producerRate: str = "0.0MB/s"
    compressRate: str = "0.0MB/s"
    consumerRate: str = "0.0MB/s"


class SideProgress(BaseModel):
    """One SIDE of the show-progress document (docs/dws-migration.md), field for field."""

    key: str = ""
    priorKey: str = "N/A"
    actionType: Literal["Backup", "Restore"] = "Backup"
    progress: str = "0.00%"
    backupRate: Rates = Field(default_factory=Rates)
    currentStep: str = "INIT"
    unrestoreKeys: str = "N/A"
    failedStep: str = "INIT"
    errorMsg: str = ""
    errorCode: str = ""
    actionStartTime: str = ""
    actionEndTime: str = ""
    updateTime: str = ""


class PrimaryState(BaseModel):
    FILE: ClassVar[str] = PRIMARY_STATE_FILE
    last_key: str | None = None  # newest set built (the chain head)
    last_barrier_ms: int | None = None
    unshipped: list[str] = []  # built, not yet delivered, in chain order
    shipped: list[str] = []  # delivered keys not yet known to be restored (for unrestoreKeys)
    state: Literal["backuping", "stopped", "waiting", "abnormal"] = "waiting"
    success_time: str = ""
    role_epoch: int = 0
    progress: SideProgress = Field(default_factory=SideProgress)


class StandbyTable(BaseModel):
    version: int
    table_id: str | None = None
    barrier_ms: int  # barrier of the newest set this table is complete at


class DesyncedTable(BaseModel):
    """A table no longer replicated; kept read-only (`none`, `log-desync-table`) or dropped."""

    reason: str
    key: str  # the set that desynchronised it
    operation: str  # desync-table-operation applied
    version: int | None = None  # the version it stayed at


class StandbyState(BaseModel):
    FILE: ClassVar[str] = STANDBY_STATE_FILE
    last_key: str | None = None  # newest set fully restored
    last_barrier_ms: int | None = None
    tables: dict[str, StandbyTable] = {}
    desynced: dict[str, DesyncedTable] = {}
    recent_ddl: list[str] = []  # newest DDL events applied ("key: table@version: change"), for show-progress
    state: Literal["restoring", "stopped", "waiting", "abnormal"] = "waiting"
    success_time: str = ""
    role_epoch: int = 0
    failover_point: str = ""
    restore_delay_s: int = 0  # restore-delay at the last pass (drsync/delay.py)
    held_back: list[str] = []  # sets delivered but not yet due under restore-delay
    next_apply_time: str = ""  # local time the oldest held-back set becomes due
    progress: SideProgress = Field(default_factory=lambda: SideProgress(actionType="Restore"))


class VerifiedTable(BaseModel):
    """One replicated table as continuous verification last found it (standby/continuous.py)."""

    version: int = -1  # the version last checked completely
    verified_barrier_ms: int | None = None  # restorable as of this barrier (its last clean check)
    checked_at: str = ""  # local time of the last complete check
    files: int = 0  # files checked then
    rows: int | None = None  # rows read back by the format's reader then
    problems: list[str] = []  # files missing or damaged that could not be repaired (yet)


class VerifyState(BaseModel):
    """The standby's continuous verification: its own file, written only by the verifier, so
    it never races the restore pass's writes of StandbyState."""

    FILE: ClassVar[str] = VERIFY_STATE_FILE
    interval_s: int | None = None  # verify-interval (None: off)
    tables: dict[str, VerifiedTable] = {}
    # every replicated table verified restorable as of this barrier (oldest of the tables')
    verified_barrier_ms: int | None = None
    recent: list[str] = []  # newest findings and repairs, with local time, for the page


def load_state(metadata_dir: Path, model: type[Any]) -> Any:
    path = metadata_dir / model.FILE
    if not path.exists():
        return model()
    return model.model_validate(read_json(path))


def save_state(metadata_dir: Path, state: PrimaryState | StandbyState | VerifyState, *,
               durable: bool = True) -> None:
    """Write the state file. `durable=False` is for progress saves (ProgressTracker): the file
    is fsynced but not its directory, so a power cut keeps this save or the one before it,
    both whole. Every change recovery relies on (last_key, unshipped, tables, ...) is saved
    with durable=True by the code making it; what only a progress save carries (counters,
    step, state/success_time, shipped keys re-derived from the standby's inbox each round)
    may go back one save, which the next round rewrites."""
    ensure_dir(metadata_dir)
    atomic_write_json(metadata_dir / type(state).FILE, state.model_dump(), sync_dir=durable)


CSV_FIELDS = [
    "key", "priorKey", "barrierTime", "action", "status", "tables", "files", "bytes",
    "startTime", "endTime", "seconds", "detail",
]


def append_history(path: Path, row: dict[str, Any]) -> None:
    """One row per set and action; fsynced, header written with the first row."""
    ensure_dir(path.parent)
    new = not path.exists()
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    if new:
        w.writeheader()
    w.writerow(row)
    with open(path, "a", newline="") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())


def read_history(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --- intent ------------------------------------------------------------------------------
# Commands only record intent (Patroni's model); the running pass reads it at step
# boundaries. A flag file of its own, so a pass saving its state never overwrites it.


def _intent_file(metadata_dir: Path, operation: str) -> Path:
    return metadata_dir / intent_name(operation)


def request_stop(metadata_dir: Path, operation: str) -> None:
    ensure_dir(metadata_dir)
    atomic_write_json(_intent_file(metadata_dir, operation), {"requested": local_time()})


def clear_stop(metadata_dir: Path, operation: str) -> bool:
    try:
        _intent_file(metadata_dir, operation).unlink()
        return True
    except FileNotFoundError:
        return False


def stop_requested(metadata_dir: Path, operation: str) -> bool:
    return _intent_file(metadata_dir, operation).exists()
