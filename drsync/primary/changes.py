"""Collect one table's changes between the version the standby will have and the barrier.

The rules (DESIGN §3, refined in docs/architecture.md):

* **barrier version** `c`: the newest version whose commit time (in-commit timestamp, else the
  commit file's mtime) is at or before the barrier.
* **log files**: every log file of a version `<= c` that was not shipped before, but never one
  below the table's *log floor* (the checkpoint a full copy or resync started from): a version
  whose data files were not copied must never be exposed on the standby.
* **data files**: every data file the new commits add (or the floor checkpoint holds)
  that the standby does not already hold. A file missing on the primary is mirrored as missing,
  with a warning when version `c` still needs it.
* **deletions**: files that commits removed and that are now gone from the primary's disk
  (VACUUM), and log files the primary cleaned up; the standby removes them after the set.

The primary keeps a small inventory per table (`TableInventory`) of what the standby holds, so
an unchanged table costs exactly one listing of its log.

The rules are the format's to carry out (`TableFormat.collect`; Delta's: tableformat/delta/
collect.py); this module is what the round calls.
"""

from __future__ import annotations

from pathlib import Path

from drsync.tableformat import get
from drsync.tableformat.base import FileToShip, TableChange, TableInventory, TableLog

__all__ = ["FileToShip", "TableChange", "TableInventory", "barrier_version", "collect_changes"]


def barrier_version(table_dir: Path, log: TableLog, barrier_ms: int, floor: int) -> int | None:
    """Newest version committed at or before the barrier, looking only above `floor`."""
    return get(log.format_name).barrier_version(table_dir, log, barrier_ms, floor)


def collect_changes(
    table_dir: Path,
    name: str,
    log: TableLog,
    barrier_ms: int,
    prev: TableInventory | None,
) -> TableChange | None:
    """The change to ship for one table, or None when nothing changed since `prev`."""
    return get(log.format_name).collect(table_dir, name, log, barrier_ms, prev)
