"""Full sets every `full-backup-exec-time-interval` (the DWS tool's periodic full backup).

A full set copies every published table again from scratch: the reseed path of
membership.py (`request_reseed(meta, None)`), which the standby applies by building each table
beside the old one and swapping it in whole. The daemon asks for one when the interval has
passed since the last one it asked for, counted from a small file in the primary's metadata
so a restart does not reset the clock. The first set of every table is full anyway, so the
count starts at the first round.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from drsync.config import Settings
from drsync.fsutil import atomic_write_json, read_json
from drsync.primary.membership import request_reseed

LAST_FULL_FILE = "last-full-set.json"


def request_full_set_if_due(settings: Settings, now: datetime) -> bool:
    """Record a full-set request when one is due; True if this call made one."""
    every = settings.full_backup_exec_time_interval
    if every is None:
        return False
    meta = settings.primary_metadata_destination
    last: datetime | None = None
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
        last = datetime.fromisoformat(read_json(meta / LAST_FULL_FILE)["requested"])
    if last is not None and now - last < every:
        return False
    if last is not None:  # else: the first round, full anyway; start counting from it
        request_reseed(meta, None)
    atomic_write_json(meta / LAST_FULL_FILE, {"requested": now.isoformat()})
    return last is not None
