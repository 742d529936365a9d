"""Table modes for role changes: fence a primary's table, and make a table writable or
read-only as its site's role demands.

A fence takes write permission off every directory of a table (its root, partitions and
`_delta_log`): a Delta writer must create files (data files, then a commit by rename or link)
and cannot, so it fails with "Permission denied" before anything is committed; what it
committed before the fence is in the log and ships with the final round. Files are left as
they are: Delta never rewrites a file in place. The original directory modes go into
the fence record the switchover's journal (`<metadata>/role-change.json`, written before the first chmod), so
unfencing restores exactly what was there.

Root ignores mode bits: a writer running as root is not stopped by a fence. The switchover
detects such a commit (the table's version moved after the fence) and rolls back instead of
losing it; docs/architecture.md says so.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from drsync.fsutil import RO_DIR, RW_DIR, RW_FILE

WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def table_dirs(table: Path) -> list[Path]:
    out = [table]
    for dirpath, dirnames, _ in os.walk(table):
        out.extend(Path(dirpath, d) for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
    return out


def dir_modes(table: Path) -> dict[str, int]:
    """Every directory of `table` and its mode: what a fence must give back."""
    return {d.relative_to(table).as_posix(): stat.S_IMODE(d.stat().st_mode) for d in table_dirs(table)}


def fence_table(table: Path) -> dict[str, int]:
    """Remove write permission from every directory of `table`; return the old modes."""
    modes: dict[str, int] = {}
    for d in table_dirs(table):
        mode = stat.S_IMODE(d.stat().st_mode)
        modes[d.relative_to(table).as_posix()] = mode
        os.chmod(d, mode & ~WRITE_BITS)
    return modes


def unfence_table(table: Path, modes: dict[str, int]) -> None:
    """Give back the modes `fence_table` recorded (new directories get a writable mode)."""
    for d in reversed(table_dirs(table)):
        rel = d.relative_to(table).as_posix()
        os.chmod(d, modes.get(rel, RW_DIR))


def make_writable(table: Path) -> None:
    """A table a writer may use: directories 0755, files 0644 (what drsync's standby took away)."""
    for dirpath, dirnames, filenames in os.walk(table):
        os.chmod(dirpath, RW_DIR)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, RW_FILE)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]


def make_readonly(table: Path) -> None:
    """A replicated table on a standby: directories r-x (no writer can add a file)."""
    for d in reversed(table_dirs(table)):
        os.chmod(d, RO_DIR)
