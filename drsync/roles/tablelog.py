"""A table's log at a chosen version: set aside what lies above it, find the version two
copies share, and the primary's inventory of a copy that holds exactly that version.

Setting aside moves files (rename, same filesystem) under a quarantine directory, keeping
their paths relative to the table: nothing is deleted, and an operator can look at or restore
them. The highest commit goes first, so the log stays contiguous and the table readable at
every step of the move.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from drsync.errors import RoleError
from drsync.faults import crash_point
from drsync.fsutil import atomic_write_bytes, ensure_dir, fsync_dir, make_writable_dir
from drsync.primary.changes import TableInventory, collect_changes
from drsync.sets.digest import file_hash
from drsync.tableformat import format_of, require_format

FAR_FUTURE_MS = 1 << 62  # a barrier after every commit: "the table as it is"


@dataclass
class SetAside:
    table: str
    to_version: int  # the version the table is at afterwards
    commits: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # every path moved, relative to the table
    rows: int = 0  # rows the set-aside commits added (from their add statistics)
    where: Path | None = None

    def describe(self) -> str:
        if not self.files:
            return f"{self.table}: at version {self.to_version}, nothing set aside"
        vs = f"{min(self.commits)}..{max(self.commits)}" if self.commits else "none"
        return (f"{self.table}: back to version {self.to_version}; set aside {len(self.commits)} "
                f"commit(s) ({vs}), {len(self.files)} file(s), {self.rows} row(s) added by them, "
                f"in {self.where}")


def _move(tdir: Path, rel: str, quarantine: Path, touched: set[Path]) -> bool:
    src = tdir / rel
    if not src.exists():
        return False
    dest = quarantine / rel
    ensure_dir(dest.parent)
    make_writable_dir(src.parent)
    os.rename(src, dest)
    touched.add(src.parent)
    crash_point("setaside.file")
    return True


def set_aside_above(tdir: Path, name: str, version: int, quarantine: Path,
                    extra: set[str] | None = None) -> SetAside:
    """Move every log file above `version`, the data files only those commits add, and the
    `extra` paths (files a half-applied set installed) into `quarantine`."""
    fmt = require_format(tdir)
    plan = fmt.set_aside_plan(tdir, name, version)
    result = SetAside(name, version, commits=plan.commits, rows=plan.rows, where=quarantine)
    data = plan.data_files | set(extra or ())
    touched: set[Path] = set()
    if plan.pointers:  # a pointer is the commit point: back at `version` before anything moves
        _repoint(tdir, plan.pointers, quarantine)
        fmt.after_install(tdir, name)  # e.g. the catalog's row, after the pointer
        crash_point("setaside.repointed")
    for rel in plan.log_files:  # newest first: the log stays contiguous
        if _move(tdir, rel, quarantine, touched):
            result.files.append(rel)
    for rel in sorted(data):
        if _move(tdir, rel, quarantine, touched):
            result.files.append(rel)
    for d in touched:
        fsync_dir(d)
    return result


def _repoint(tdir: Path, pointers: dict[str, bytes], quarantine: Path) -> None:
    """Replace each pointer file (temp + fsync + rename); the one it replaces is kept in the
    quarantine (only the first time: a re-run after a kill finds the new one in place)."""
    for rel, data in pointers.items():
        old = tdir / rel
        with contextlib.suppress(FileNotFoundError):
            if not (quarantine / rel).exists():
                atomic_write_bytes(quarantine / rel, old.read_bytes())
        make_writable_dir(old.parent)
        atomic_write_bytes(old, data)


def set_aside_table(tdir: Path, name: str, quarantine: Path) -> SetAside:
    """Move a whole table directory aside (a table that exists only in a half-applied set, or
    only on an old primary)."""
    result = SetAside(name, -1, where=quarantine)
    result.files = [str(p.relative_to(tdir)) for p in tdir.rglob("*") if p.is_file()]
    ensure_dir(quarantine.parent)
    make_writable_dir(tdir.parent)
    os.rename(tdir, quarantine)
    fsync_dir(tdir.parent)
    return result


Commits = dict[int, tuple[int, str]]  # version -> (size, blake2b) of each commit file


def commit_hashes(tdir: Path) -> Commits | None:
    """Every commit of a table with its size and hash (None: no table of a known format)."""
    fmt = format_of(tdir)
    if fmt is None:
        return None
    return {v: ((tdir / rel).stat().st_size, file_hash(tdir / rel)) for v, rel in fmt.commits(tdir).items()}


def shared_version(mine: Commits, theirs: Commits) -> int | None:
    """The newest version both copies hold with the same number *and* byte-identical commit
    file (after a failover both sides may hold different commits under one number). Walks up
    from the oldest commit both logs still have: the shared part is a prefix."""
    last: int | None = None
    for v in sorted(set(mine) & set(theirs)):
        if mine[v] != theirs[v]:
            break
        last = v
    return last


def inventory_at(tdir: Path, name: str, version: int) -> TableInventory:
    """The primary's inventory for a peer that holds this table exactly as `tdir` is, at
    `version`: built by the same code path as after a full copy (collect_changes without a
    previous inventory), so what the next round ships is computed exactly as usual."""
    fmt = require_format(tdir)
    change = collect_changes(tdir, name, fmt.read_log(tdir), FAR_FUTURE_MS, None)
    if change is None or change.to_version != version:
        got = change.to_version if change is not None else None
        raise RoleError(f"table {name}: expected at version {version} in {tdir}, found {got}",
                        hint="a writer changed the table during the role change; re-run the command")
    inv = change.inventory
    _track_files_not_live(tdir, fmt.log_dir, fmt.held_log_files(tdir), inv)
    return inv


def _track_files_not_live(tdir: Path, log_dir: str, log_files: dict[str, int], inv: TableInventory) -> None:
    """A full copy's inventory lists only what version `v` needs; after a role change the new
    standby also holds everything else the table directory holds (removed files VACUUM has not
    deleted yet, log files below the newest checkpoint). Track them as held, so their deletion
    on the new primary reaches the new standby instead of leaving them there forever."""
    for dirpath, dirnames, filenames in os.walk(tdir):
        top = dirpath == str(tdir)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not (top and d == log_dir)]
        for fname in filenames:
            if fname.startswith("."):
                continue  # drsync's and writers' temporary files
            path = Path(dirpath, fname)
            rel = path.relative_to(tdir).as_posix()
            if rel not in inv.files:
                inv.files[rel] = path.stat().st_size
                inv.removed.append(rel)
    for rel, size in log_files.items():
        if rel not in inv.log_files:
            inv.log_files[rel] = size
    inv.removed.sort()
