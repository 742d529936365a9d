"""drsync.site.progress: the show-progress document (docs/dws-migration.md) and the RPO."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drsync.errors import IntegrityError
from drsync.site.document import ADDED_FIELDS, build_document, standby_rpo_seconds
from drsync.site.progress import ProgressTracker
from drsync.site.state import PrimaryState, SideProgress, StandbyState, StandbyTable, local_time

SPEC = Path(__file__).resolve().parents[2] / "data" / "progress-spec.md"
LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")

TOP = {"primary cluster", "standby cluster", "apply", "latestBarrierTime",
       "recovery point objective", "failover recovery point time"}
APPLY = {"backupState", "restoreState", "backupSuccessTime", "restoreSuccessTime"}
SIDE = {"key", "priorKey", "actionType", "progress", "backupRate", "currentStep",
        "unrestoreKeys", "failedStep", "errorMsg", "errorCode", "actionStartTime",
        "actionEndTime", "updateTime"}
RATES = {"producerRate", "compressRate", "consumerRate"}


def spec_field_names() -> set[str]:
    """Field names in the spec's document block: every `"name":`, and the one line that
    lists three names before a shared description."""
    block = SPEC.read_text().split("```")[1]
    names = set(re.findall(r'"([^"]+)"\s*:', block))
    for line in block.splitlines():
        if '"actionStartTime"' in line:
            names |= set(re.findall(r'"([^"]+)"', line.split('":')[0] + '"'))
    return names


def now_ms() -> int:
    return int(time.time() * 1000)


def doc_for(**standby_kw: Any) -> dict[str, Any]:
    return doc_of(PrimaryState(), StandbyState(**standby_kw))


def doc_of(primary: PrimaryState, standby: StandbyState) -> dict[str, Any]:
    """The document as operators parse it."""
    return build_document(primary, standby).as_json()


def test_field_names_match_spec() -> None:
    doc = doc_of(PrimaryState(), StandbyState())
    assert list(doc)[:len(TOP)] == [n for n in doc if n in TOP]  # the spec's fields first
    assert set(doc) == TOP | set(ADDED_FIELDS)
    assert set(doc["apply"]) == APPLY
    for side in ("primary cluster", "standby cluster"):
        assert set(doc[side]) == SIDE
        assert set(doc[side]["backupRate"]) == RATES
    assert spec_field_names() == TOP | APPLY | SIDE | RATES
    json.dumps(doc)  # serialisable as is


def test_sides_and_apply_values() -> None:
    p = PrimaryState(state="backuping", success_time="2026-11-23 15:15:02",
                     progress=SideProgress(key="20261123_141502", priorKey="20261123_141402",
                                           currentStep="SHIP", progress="37.50%"))
    s = StandbyState(state="abnormal", success_time="2026-11-23 15:10:00",
                     failover_point="2026-11-23 15:00:00",
                     progress=SideProgress(actionType="Restore", currentStep="APPLY",
                                           failedStep="APPLY", errorMsg="bundle b0 corrupt",
                                           errorCode="DRS320"))
    doc = doc_of(p, s)
    assert doc["primary cluster"]["key"] == "20261123_141502"
    assert doc["primary cluster"]["priorKey"] == "20261123_141402"
    assert doc["primary cluster"]["actionType"] == "Backup"
    assert doc["primary cluster"]["progress"] == "37.50%"
    assert doc["standby cluster"]["actionType"] == "Restore"
    assert doc["standby cluster"]["errorCode"] == "DRS320"
    assert doc["apply"] == {"backupState": "backuping", "restoreState": "abnormal",
                            "backupSuccessTime": "2026-11-23 15:15:02",
                            "restoreSuccessTime": "2026-11-23 15:10:00"}
    assert doc["failover recovery point time"] == "2026-11-23 15:00:00"
    assert doc["apply"]["backupState"] == "abnormal" or doc["apply"]["restoreState"] == "abnormal"
    # building the document does not change the states it reads
    assert p.progress.unrestoreKeys == "N/A"


def test_defaults_when_nothing_happened() -> None:
    doc = doc_of(PrimaryState(), StandbyState())
    assert doc["latestBarrierTime"] == ""
    assert doc["failover recovery point time"] == ""
    assert doc["primary cluster"]["priorKey"] == "N/A"
    assert doc["primary cluster"]["unrestoreKeys"] == "N/A"
    assert doc["primary cluster"]["failedStep"] == "INIT"
    assert "abnormal" not in doc["apply"].values()


def test_rpo_is_string_of_seconds_from_oldest_table_barrier() -> None:
    now = now_ms()
    s = {
        "last_key": "20261123_141502",
        "last_barrier_ms": now - 10_000,
        "tables": {"d.s.fresh": StandbyTable(version=9, barrier_ms=now - 10_000),
                   "d.s.stuck": StandbyTable(version=2, barrier_ms=now - 100_000)},
    }
    doc = doc_for(**s)
    rpo = doc["recovery point objective"]
    assert isinstance(rpo, str) and rpo.isdigit()
    assert 100 <= int(rpo) <= 103
    assert doc["latestBarrierTime"] == local_time((now - 10_000) / 1000)
    assert LOCAL_TIME.match(doc["latestBarrierTime"])


def test_rpo_in_sync() -> None:
    now = now_ms()
    doc = doc_for(last_key="k", last_barrier_ms=now - 2_000,
                  tables={"d.s.t": StandbyTable(version=1, barrier_ms=now - 2_000)})
    assert 2 <= int(doc["recovery point objective"]) <= 4


def test_standby_rpo_seconds_with_fixed_now() -> None:
    now = datetime(2026, 11, 23, 14, 15, 2, tzinfo=UTC)
    base = int(now.timestamp() * 1000)
    st = StandbyState(last_barrier_ms=base - 5_000,
                      tables={"a.b.c": StandbyTable(version=1, barrier_ms=base - 65_000),
                              "a.b.d": StandbyTable(version=1, barrier_ms=base - 5_000)})
    assert standby_rpo_seconds(st, now) == 65
    assert standby_rpo_seconds(StandbyState(), now) is None
    future = StandbyState(last_barrier_ms=base + 10_000)
    assert standby_rpo_seconds(future, now) == 0  # never negative


def test_unrestore_keys_lists_shipped_not_restored() -> None:
    p = PrimaryState(shipped=["20261123_141302", "20261123_141402", "20261123_141502"])
    s = StandbyState(last_key="20261123_141302")
    doc = doc_of(p, s)
    assert doc["primary cluster"]["unrestoreKeys"] == "20261123_141402,20261123_141502"
    assert doc["standby cluster"]["unrestoreKeys"] == "20261123_141402,20261123_141502"
    caught_up = doc_of(p, StandbyState(last_key="20261123_141502"))
    assert caught_up["primary cluster"]["unrestoreKeys"] == "N/A"
    nothing_restored = doc_of(p, StandbyState())
    assert nothing_restored["standby cluster"]["unrestoreKeys"] == ",".join(p.shipped)


def test_unrestore_keys_excludes_sets_not_yet_shipped() -> None:
    """spec: unrestoreKeys = "keys shipped but not restored"; a set still waiting on the
    primary (unshipped) has not been shipped."""
    p = PrimaryState(shipped=["20261123_141402"], unshipped=["20261123_141502"])
    doc = doc_of(p, StandbyState(last_key="20261123_141302"))
    assert doc["primary cluster"]["unrestoreKeys"] == "20261123_141402"


# --- tracker -----------------------------------------------------------------------------------


def test_tracker_progress_and_rates() -> None:
    side = SideProgress()
    saves: list[str] = []
    ui: list[tuple[str, int, int]] = []
    tr = ProgressTracker(side, lambda: saves.append(side.progress),
                         ui=lambda step, done, total: ui.append((step, done, total)))
    assert LOCAL_TIME.match(side.actionStartTime)
    tr.total = 400
    tr.step("SHIP")
    tr.add(produced=400, compressed=100, consumed=150)
    tr.flush(force=True)
    assert side.progress == "37.50%"
    assert side.currentStep == "SHIP"
    assert re.match(r"^\d+\.\dMB/s$", side.backupRate.producerRate)
    tr.add(consumed=1000)
    tr.flush(force=True)
    assert side.progress == "100.00%"  # capped
    tr.finish()
    assert side.currentStep == "FINISH" and LOCAL_TIME.match(side.actionEndTime)
    assert saves and ui[-1] == ("FINISH", 1150, 400)


def test_throttled_steps_save_at_most_twice_a_second_but_tell_the_ui_every_step() -> None:
    side = SideProgress()
    saved: list[str] = []
    ui: list[str] = []
    tr = ProgressTracker(side, lambda: saved.append(side.currentStep),
                         ui=lambda step, done, total: ui.append(step), throttle_steps=True)
    for step in ("BARRIER", "COLLECT", "COMPRESS"):
        tr.step(step)
    assert saved == ["BARRIER"], "steps within 0.5 s of a save were saved"
    assert ui == ["BARRIER", "COLLECT", "COMPRESS"]
    time.sleep(0.55)
    tr.step("SHIP")  # a step after a quiet half second is saved at once
    tr.finish()  # always saved, with the step it ends on
    assert saved == ["BARRIER", "SHIP", "FINISH"]
    plain = ProgressTracker(SideProgress(), lambda: saved.append("plain"))
    saved.clear()
    plain.step("A")
    plain.step("B")
    assert saved == ["plain", "plain"]  # unthrottled (the restore's tracker): every step saved


def test_tracker_fail_records_step_and_code() -> None:
    side = SideProgress()
    tr = ProgressTracker(side, lambda: None)
    tr.step("APPLY")
    tr.fail(IntegrityError("bundle b0 is corrupt"))
    assert (side.failedStep, side.errorMsg, side.errorCode) == (
        "APPLY", "bundle b0 is corrupt", "DRS320")
    # A new action starts clean.
    ProgressTracker(side, lambda: None)
    assert (side.failedStep, side.errorMsg, side.errorCode) == ("INIT", "", "")


def test_is_abnormal_either_side() -> None:
    assert build_document(PrimaryState(state="abnormal"), StandbyState()).abnormal
    assert build_document(PrimaryState(), StandbyState(state="abnormal")).abnormal
    assert not build_document(PrimaryState(state="stopped"), StandbyState(state="restoring")).abnormal
