"""drsync.site.state: side state round trip, the history csv, stop intents."""

from __future__ import annotations

import json
import os
from pathlib import Path

from drsync.fsutil import TMP_PREFIX
from drsync.site.state import (
    CSV_FIELDS,
    PrimaryState,
    SideProgress,
    StandbyState,
    StandbyTable,
    append_history,
    clear_stop,
    load_state,
    local_time,
    read_history,
    request_stop,
    save_state,
    stop_requested,
)


def test_missing_state_is_default(tmp_path: Path) -> None:
    assert load_state(tmp_path / "nowhere", PrimaryState) == PrimaryState()
    s = load_state(tmp_path, StandbyState)
    assert s == StandbyState()
    assert s.progress.actionType == "Restore"
    assert PrimaryState().progress.actionType == "Backup"


def test_primary_state_round_trip(tmp_path: Path) -> None:
    meta = tmp_path / "meta" / "primary"  # created on save
    st = PrimaryState(
        last_key="20261123_141502", last_barrier_ms=1_795_442_102_000,
        unshipped=["20261123_141502"], shipped=["20261123_141402"], state="backuping",
        success_time="2026-11-23 15:15:02", role_epoch=3,
        progress=SideProgress(key="20261123_141502", priorKey="20261123_141402",
                              progress="37.50%", currentStep="SHIP",
                              errorMsg="table d.s.t: Zürich ✓", errorCode="DRS200"),
    )
    st.progress.backupRate.producerRate = "12.3MB/s"
    save_state(meta, st)
    again = load_state(meta, PrimaryState)
    assert again == st
    assert again.progress.backupRate.producerRate == "12.3MB/s"
    assert os.listdir(meta) == [PrimaryState.FILE]
    raw = json.loads((meta / PrimaryState.FILE).read_text(encoding="utf-8"))
    assert raw["progress"]["errorMsg"] == "table d.s.t: Zürich ✓"


def test_standby_state_round_trip_and_overwrite(tmp_path: Path) -> None:
    st = StandbyState(
        last_key="20261123_141502", last_barrier_ms=1,
        tables={"d.s.t": StandbyTable(version=4, table_id="abc", barrier_ms=1),
                "d.s.u": StandbyTable(version=0, barrier_ms=0)},
        state="abnormal", failover_point="2026-11-23 15:15:02", role_epoch=2,
    )
    save_state(tmp_path, st)
    assert load_state(tmp_path, StandbyState) == st
    st.tables["d.s.t"].version = 5
    st.state = "waiting"
    save_state(tmp_path, st)
    again = load_state(tmp_path, StandbyState)
    assert again.tables["d.s.t"].version == 5
    assert again.state == "waiting"
    assert [n for n in os.listdir(tmp_path) if n.startswith(TMP_PREFIX)] == []


def test_both_sides_in_one_directory(tmp_path: Path) -> None:
    """Both sites may use the same metadata path: each side's state has its own file."""
    save_state(tmp_path, PrimaryState(last_key="p", state="backuping"))
    save_state(tmp_path, StandbyState(last_key="s", state="restoring"))
    assert PrimaryState.FILE != StandbyState.FILE
    assert load_state(tmp_path, PrimaryState).last_key == "p"
    assert load_state(tmp_path, StandbyState).last_key == "s"


# --- history csv ------------------------------------------------------------------------------


def row(key: str, **extra: object) -> dict[str, object]:
    return {"key": key, "priorKey": "N/A", "barrierTime": "2026-11-23 15:15:02",
            "action": "Backup", "status": "complete", "tables": 2, "files": 7, "bytes": 1234,
            "startTime": "s", "endTime": "e", "seconds": 1.5, "detail": "", **extra}


def test_history_append_and_read(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "backuprestoreinfo.csv"
    assert read_history(path) == []
    append_history(path, row("20261123_141402"))
    append_history(path, row("20261123_141502", priorKey="20261123_141402", status="partial",
                             detail='table "d.s.t", failed:\nabsolute path, 100%'))
    append_history(path, {"key": "k3", "unknown_column": "ignored"})
    rows = read_history(path)
    assert [r["key"] for r in rows] == ["20261123_141402", "20261123_141502", "k3"]
    assert list(rows[0]) == CSV_FIELDS
    assert rows[0]["bytes"] == "1234" and rows[0]["seconds"] == "1.5"
    assert rows[1]["priorKey"] == "20261123_141402"
    assert rows[1]["detail"] == 'table "d.s.t", failed:\nabsolute path, 100%'
    assert rows[2]["status"] == "" and "unknown_column" not in rows[2]
    # exactly one header line
    lines = path.read_text().splitlines()
    assert sum(1 for line in lines if line.startswith("key,priorKey,")) == 1


# --- stop intent ------------------------------------------------------------------------------


def test_stop_intent(tmp_path: Path) -> None:
    meta = tmp_path / "meta"
    assert not stop_requested(meta, "backup")
    assert clear_stop(meta, "backup") is False
    request_stop(meta, "backup")
    assert stop_requested(meta, "backup")
    assert not stop_requested(meta, "restore")  # per operation
    request_stop(meta, "backup")  # idempotent
    # Saving state (as a running pass does) never loses the intent.
    save_state(meta, PrimaryState(state="backuping"))
    assert stop_requested(meta, "backup")
    assert clear_stop(meta, "backup") is True
    assert not stop_requested(meta, "backup")
    assert clear_stop(meta, "backup") is False


def test_local_time_format() -> None:
    text = local_time(0)
    assert len(text) == 19 and text[4] == "-" and text[10] == " " and text[13] == ":"
    assert len(local_time()) == 19
