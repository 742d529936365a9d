"""Housekeeping for many small sets (continuous mode): old history thinned to one per minute.

Continuous mode may cut a set every `continuous-min-interval` (1 s by default), so a day is
up to 86,400 sets. `life-cycle` retention (site/retention.py) already bounds the sets, their
manifests and barrier maps; within life-cycle this module thins what only serves looking back:

* **barrier maps** on the standby older than `THIN_AFTER`: the last map of each minute stays
  (a drill or a reader can still pick a consistent cut at minute resolution), the newest map
  always stays (the next set's versions build on it: standby/barriermaps.py), and so does
  every map a live drill holds;
* **backuprestoreinfo.csv** rows older than `THIN_AFTER`: the last row of each minute for each
  action and status stays, so every failure remains on record, and the file is replaced
  atomically (temp, fsync, rename) while the lock of the pass that appends to it is held.

Recent history (the last hour) is never touched: that is where an operator looks at 3 a.m.
Scheduled mode cuts at most one set a minute by default and is left exactly as the DWS tool
keeps it: `run_retention` calls this in continuous mode only.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from drsync.fsutil import atomic_write_bytes
from drsync.site.layout import KEY_FORMAT, SET_KEY

THIN_AFTER = timedelta(hours=1)
_MINUTE = len("YYYYmmdd_HHMM")  # a key (KEY_FORMAT) cut before its seconds: its minute


def _old(key: str, now: datetime) -> bool:
    return datetime.strptime(key, KEY_FORMAT).replace(tzinfo=now.tzinfo) < now - THIN_AFTER


def keys_to_thin(keys: Iterable[str], now: datetime, keep: set[str]) -> list[str]:
    """Keys older than THIN_AFTER that are not the last of their minute, nor the newest, nor
    in `keep`: what thinning may remove."""
    ordered = sorted(k for k in keys if SET_KEY.match(k))
    if not ordered:
        return []
    last_of_minute: dict[str, str] = {}
    for k in ordered:
        last_of_minute[k[:_MINUTE]] = k
    newest = ordered[-1]
    return [k for k in ordered if _old(k, now) and k != newest and k not in keep
            and last_of_minute[k[:_MINUTE]] != k]


def thin_history(path: Path, now: datetime) -> int:
    """Thin the csv at `path` in place; returns the number of rows removed. Rows whose key is
    not a set key (e.g. N/A) are kept as they are."""
    try:
        with open(path, newline="") as f:
            text = f.read()
    except FileNotFoundError:
        return 0
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    fields = reader.fieldnames
    if not fields:
        return 0
    last: dict[tuple[str, str, str], int] = {}
    for i, row in enumerate(rows):
        key = row.get("key") or ""
        if SET_KEY.match(key):
            last[(key[:_MINUTE], row.get("action") or "", row.get("status") or "")] = i
    kept = []
    for i, row in enumerate(rows):
        key = row.get("key") or ""
        if (SET_KEY.match(key) and _old(key, now)
                and last[(key[:_MINUTE], row.get("action") or "", row.get("status") or "")] != i):
            continue
        kept.append(row)
    removed = len(rows) - len(kept)
    if removed:
        out = io.StringIO()
        w = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(kept)
        atomic_write_bytes(path, out.getvalue().encode())
    return removed

