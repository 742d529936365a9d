"""The standby's side of membership changes a set carries (DESIGN §4): tables moved on the
primary, tables replaced as a whole, tables no longer replicated, and the publications.

Each step is idempotent: a set re-applied after a kill finds the move done, the replacement
already swapped in (and builds and swaps an identical one), the dropped table gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from drsync.config import Settings
from drsync.errors import StandbyConflictError
from drsync.faults import crash_point
from drsync.fsutil import (
    RO_DIR,
    atomic_write_bytes,
    ensure_dir,
    exchange_paths,
    fsync_dir,
    json_bytes,
    make_writable_dir,
    rmtree_force,
)
from drsync.nofollow import printable
from drsync.sets.manifest import Manifest, ManifestTable
from drsync.site.layout import PUBLICATIONS_FILE
from drsync.site.names import relpath_of
from drsync.site.progress import ProgressTracker
from drsync.site.state import DesyncedTable, StandbyState
from drsync.standby.apply import apply_table, refuse_symlinked_table
from drsync.standby.staging import Staging

log = logging.getLogger("drsync.standby.desync")
REPLACE_SUFFIX = ".drsync-replace"  # hidden ('.' first): never discovered as a table


def apply_renames(warehouse: Path, state: StandbyState, m: Manifest) -> None:
    """Move each renamed table's directory (and its state) before the set's tables apply."""
    for r in m.renames:
        src = warehouse / relpath_of(r.from_name)
        dest = warehouse / relpath_of(r.to_name)
        if r.from_name not in state.tables:
            # Only a table drsync replicates here moves: never a local one on the primary's word.
            log.warning("set %s: move of %s to %s ignored: %s is not replicated on this standby",
                        m.key, r.from_name, r.to_name, r.from_name)
            continue
        refuse_symlinked_table(warehouse, r.from_name)
        refuse_symlinked_table(warehouse, r.to_name)
        if src.is_dir() and dest.exists():
            raise StandbyConflictError(
                f"set {m.key}: table {r.from_name} moved to {r.to_name} on the primary, but "
                f"{dest} already exists on the standby; drsync will not overwrite it",
                hint="move the standby's table aside, then run restore again")
        if src.is_dir():
            ensure_dir(dest.parent)
            make_writable_dir(src)  # moving a directory rewrites its '..' entry
            os.rename(src, dest)
            fsync_dir(src.parent)
            fsync_dir(dest.parent)
            os.chmod(dest, RO_DIR)
            crash_point("restore.renamed")
        known = state.tables.pop(r.from_name, None)
        if known is not None and r.to_name not in state.tables:
            state.tables[r.to_name] = known
        log.info("set %s: table %s moved to %s on the primary; moved here too", m.key, r.from_name, r.to_name)


def replaces(warehouse: Path, state: StandbyState, t: ManifestTable) -> bool:
    """A full copy replaces the table as a whole if the primary says so, or if the standby
    still holds a desynchronised copy of that name (re-published)."""
    ours = t.name in state.tables or t.name in state.desynced
    if t.replace:
        # Never swap out a table drsync did not replicate: that one goes through the conflict check.
        return ours or not (warehouse / t.path).exists()
    return t.mode == "full" and t.name in state.desynced and (warehouse / t.path).exists()


def replace_table(warehouse: Path, staging: Path | Staging, t: ManifestTable,
                  tracker: ProgressTracker) -> None:
    """Build the new table completely beside the old one, then swap the two directories in
    one step (renameat2 RENAME_EXCHANGE): readers see the old table or the new one, never a
    mix. A kill before the swap leaves the old table; after it, the new one."""
    tdir = warehouse / t.path
    if not tdir.exists():
        apply_table(warehouse, staging, t, tracker)
        return
    aside = tdir.parent / f".{tdir.name}{REPLACE_SUFFIX}"
    rmtree_force(aside)  # a build killed before its swap, or the old table after one
    apply_table(warehouse, staging, t, tracker, tdir=aside)
    crash_point("restore.replace_built")
    make_writable_dir(tdir.parent)
    try:
        exchange_paths(aside, tdir)
    except OSError as e:
        # No RENAME_EXCHANGE (e.g. NFS): two renames; a kill between them leaves the table
        # missing until the re-run, never half old, half new.
        log.warning("%s: cannot swap atomically (%s); replacing it in two steps", tdir, e)
        old = tdir.parent / f".{tdir.name}.drsync-old"
        rmtree_force(old)
        os.rename(tdir, old)
        os.rename(aside, tdir)
        fsync_dir(tdir.parent)
        rmtree_force(old)
        return
    fsync_dir(tdir.parent)
    crash_point("restore.replace_swapped")
    rmtree_force(aside)  # the old table, now under the aside name


def apply_desync(settings: Settings, state: StandbyState, m: Manifest) -> None:
    """Apply desync-table-operation to each table the set no longer replicates."""
    op = settings.desync_table_operation
    for d in m.desync:
        known = state.tables.pop(d.name, None)
        if known is None and d.name not in state.desynced:
            continue  # never replicated here: not ours to touch
        tdir = settings.standby_warehouse / relpath_of(d.name)
        if op == "drop-desync-table":
            rmtree_force(tdir)
            with contextlib.suppress(FileNotFoundError):
                fsync_dir(tdir.parent)
            crash_point("restore.desync_dropped")
            log.warning("set %s: table %s is no longer replicated (%s): dropped (desync-table-operation)",
                        m.key, d.name, printable(d.reason))
        else:
            log.warning("set %s: table %s is no longer replicated (%s): kept read-only; "
                        "set-independent makes it writable", m.key, d.name, printable(d.reason))
        prior = state.desynced.get(d.name)
        state.desynced[d.name] = DesyncedTable(
            reason=d.reason, key=m.key, operation=op,
            version=known.version if known else (prior.version if prior else None))


def warn_desynced(settings: Settings, state: StandbyState) -> None:
    """log-desync-table: a warning per desynchronised table at every pass."""
    if settings.desync_table_operation != "log-desync-table":
        return
    for name, d in sorted(state.desynced.items()):
        if d.operation != "drop-desync-table":
            log.warning("table %s is desynchronised since set %s (%s); its standby copy is not updated",
                        name, d.key, printable(d.reason))


def store_publications(settings: Settings, m: Manifest) -> None:
    """Keep the primary's publications under the same name, for after a role change. Not when
    both sites share one metadata directory: the primary's own file is the newer one."""
    meta = settings.restore_metadata_destination
    if m.publications is None or meta == settings.primary_metadata_destination:
        return
    data = json_bytes(m.publications)
    with contextlib.suppress(OSError):
        if (meta / PUBLICATIONS_FILE).read_bytes() == data:
            return  # every set carries them; rewriting the same bytes cost 2 fsyncs a round
    atomic_write_bytes(meta / PUBLICATIONS_FILE, data)
