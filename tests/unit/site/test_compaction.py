"""Continuous mode's housekeeping: history past an hour thinned to one a minute."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drsync.site.compaction import keys_to_thin, thin_history
from drsync.site.layout import KEY_FORMAT
from drsync.site.state import CSV_FIELDS, append_history, read_history

NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


def key(ago: timedelta) -> str:
    return (NOW - ago).strftime(KEY_FORMAT)


def test_old_keys_keep_the_last_of_each_minute_recent_ones_all() -> None:
    old = [key(timedelta(hours=2, seconds=s)) for s in range(0, 180)]  # three minutes, one a second
    recent = [key(timedelta(minutes=30, seconds=s)) for s in range(0, 60)]
    thinned = set(keys_to_thin(old + recent, NOW, keep=set()))
    kept = set(old + recent) - thinned
    assert not thinned & set(recent)
    old_kept = sorted(kept - set(recent))
    assert len({k[:13] for k in old}) <= len(old_kept) <= len({k[:13] for k in old})
    for k in old_kept:  # each is the newest of its minute
        assert k == max(o for o in old if o[:13] == k[:13])


def test_newest_and_held_keys_are_never_thinned() -> None:
    keys = [key(timedelta(hours=3, seconds=s)) for s in range(0, 30)]
    held = {keys[5]}
    thinned = keys_to_thin(keys, NOW, keep=held)
    assert keys[5] not in thinned and max(keys) not in thinned
    last_of_minute = {max(k for k in keys if k[:13] == m) for m in {k[:13] for k in keys}}
    assert sorted(thinned) == sorted(set(keys) - last_of_minute - held)
    assert keys_to_thin([], NOW, keep=set()) == []
    assert keys_to_thin(["not-a-key", "x"], NOW, keep=set()) == []


def _row(k: str, action: str = "restore", status: str = "success") -> dict[str, str]:
    return {"key": k, "priorKey": "N/A", "barrierTime": k, "action": action, "status": status,
            "tables": "1", "files": "1", "bytes": "1", "startTime": "t", "endTime": "t",
            "seconds": "0.1", "detail": ""}


def test_history_rows_thinned_failures_and_recent_rows_kept(tmp_path: Path) -> None:
    path = tmp_path / "backuprestoreinfo.csv"
    old = [key(timedelta(hours=2, seconds=s)) for s in range(120, 0, -1)]  # oldest first
    for k in old:
        append_history(path, _row(k))
    failed = old[3]
    append_history(path, _row(failed, status="failed"))
    recent = [key(timedelta(seconds=s)) for s in range(30, 0, -1)]
    for k in recent:
        append_history(path, _row(k))
    append_history(path, {**_row("N/A"), "key": "N/A", "action": "backup"})
    before = read_history(path)
    removed = thin_history(path, NOW)
    after = read_history(path)
    assert removed == len(before) - len(after) > 0
    keys_after = [r["key"] for r in after]
    assert all(k in keys_after for k in recent)
    assert any(r["key"] == failed and r["status"] == "failed" for r in after)
    assert "N/A" in keys_after
    old_success = [r["key"] for r in after if r["key"] in old and r["status"] == "success"]
    assert len(old_success) == len({k[:13] for k in old})
    with open(path, newline="") as f:  # a whole csv with the DWS header, appendable again
        assert next(csv.reader(f)) == CSV_FIELDS
    append_history(path, _row(key(timedelta(0))))
    assert len(read_history(path)) == len(after) + 1
    assert thin_history(path, NOW) == 0  # idempotent
    assert thin_history(tmp_path / "absent.csv", NOW) == 0
