"""What a round protects, resolved at its barrier (DESIGN §4).

`plan_round` reads the publications (and pub.list) once and splits the warehouse into: the
published tables to collect, the inventoried tables that are no longer protected or whose
directory vanished (*desynchronised*), and the vanished tables' ids, so that a table
moved within published objects is recognised (`match_rename`) instead of copied again.
It also reads the reseed intent (`request_reseed`), which the round clears after its commit
point (`clear_reseed`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from drsync.errors import ConfigError, DrsyncError, TableFormatError, TableRecreatedError
from drsync.faults import crash_point
from drsync.fsutil import atomic_write_json, ensure_dir, read_json, read_json_object
from drsync.primary.changes import TableChange, TableInventory, collect_changes
from drsync.publications.publist import parse_pub_list
from drsync.publications.store import Publications, load_publications
from drsync.sets.manifest import DesyncEntry, Rename
from drsync.site.layout import LOCK_DIR, RESEED_FILE, MetadataLayout
from drsync.site.locks import operation_lock
from drsync.site.warehouse import Layout, TableRef, scan_tables
from drsync.tableformat import format_of, require_format
from drsync.tableformat.base import TableLog

log = logging.getLogger("drsync.primary.membership")
NO_PUBLICATIONS = ("no publications: nothing is protected (create one with `drsync publication "
                   "create`, e.g. --all-databases)")


def inventory_path(meta: Path, table: TableRef) -> Path:
    return MetadataLayout(meta).inventory(table)


def load_inventory(meta: Path, table: TableRef) -> TableInventory | None:
    p = inventory_path(meta, table)
    return TableInventory.from_json(read_json(p)) if p.exists() else None


def inventoried(meta: Path) -> list[TableRef]:
    """Every table the primary keeps an inventory of (i.e. the standby holds or will hold)."""
    layout = MetadataLayout(meta)
    return [TableRef(*parts) for parts in layout.inventory_tables()]


@dataclass
class RoundPlan:
    publications: Publications | None
    tables: list[TableRef] = field(default_factory=list)
    desync: list[DesyncEntry] = field(default_factory=list)
    # table id -> (name, inventory) of inventoried tables whose directory is gone
    vanished: dict[str, tuple[TableRef, TableInventory]] = field(default_factory=dict)
    reseed_all: bool = False
    reseed: set[str] = field(default_factory=set)
    message: str = ""
    # each published table's log signature as discovered (tableformat.probe; None: unreadable)
    signatures: dict[str, str | None] = field(default_factory=dict)
    inventoried: list[TableRef] = field(default_factory=list)  # read once per round

    def wants_reseed(self, name: str) -> bool:
        return self.reseed_all or name in self.reseed

    def match_rename(self, table_id: str | None) -> tuple[TableRef, TableInventory] | None:
        """A new table carrying the id of a vanished one is that table, moved: claim it."""
        if table_id is None:
            return None
        found = self.vanished.pop(table_id, None)
        if found is not None:
            self.desync = [d for d in self.desync if d.name != found[0].name]
        return found


def plan_round(meta: Path, warehouse: Path, publication_list: Path | None,
               layout: Layout = "dws", inventoried_now: list[TableRef] | None = None) -> RoundPlan:
    """`inventoried_now`: the inventoried tables as a daemon's last round left them
    (roundmemory.py); None reads them from disk."""
    pubs = load_publications(meta)
    plan = RoundPlan(pubs)
    if pubs is None:
        plan.message = NO_PUBLICATIONS
        return plan  # never configured: protect nothing, desynchronise nothing (upgrade safety)
    keys = parse_pub_list(publication_list) if publication_list is not None else None
    chosen = pubs.selected(keys)
    if keys is not None:
        unknown = [k for k in keys if k not in {p.key for p in pubs.publications}]
        if unknown:
            # A typo here would desynchronise (and with drop-desync-table drop) every table of
            # the publication meant: refuse the round, desynchronise nothing.
            raise ConfigError(
                f"publication-list {publication_list} names unknown publication(s): {', '.join(unknown)}; "
                "nothing was done",
                hint="fix the list (drsync publication list shows the publications as db.name)")
    if not chosen:
        plan.message = "no publications selected: nothing is protected"
    for t, sig in scan_tables(warehouse, layout):
        if pubs.covers(chosen, t.db, t.schema, t.table):
            plan.tables.append(t)
            plan.signatures[t.name] = sig
    published = {t.name for t in plan.tables}
    reseed = read_reseed(meta)
    wanted = reseed.get("tables")
    plan.reseed_all = reseed.get("all") is True
    plan.reseed = {str(t) for t in wanted} if isinstance(wanted, list) else set()
    plan.inventoried = inventoried(meta) if inventoried_now is None else inventoried_now
    for ref in plan.inventoried:
        if ref.name in published:
            continue
        if format_of(ref.path(warehouse)) is None:
            inv = load_inventory(meta, ref)
            if inv is not None and inv.table_id:
                plan.vanished[inv.table_id] = (ref, inv)
            plan.desync.append(DesyncEntry(name=ref.name, reason="dropped or moved on the primary"))
        else:
            plan.desync.append(DesyncEntry(name=ref.name, reason="no longer published"))
    return plan


def move_and_forget(meta: Path, renames: list[Rename], desync: list[DesyncEntry]) -> None:
    """After the commit point: a moved table's inventory follows it (rewritten afterwards if
    it also changed); a desynchronised table's is removed."""
    for r in renames:
        dest = inventory_path(meta, TableRef.parse(r.to_name))
        ensure_dir(dest.parent)
        with contextlib.suppress(FileNotFoundError):
            os.replace(inventory_path(meta, TableRef.parse(r.from_name)), dest)
        crash_point("backup.inventory_moved")
    for d in desync:
        with contextlib.suppress(FileNotFoundError):
            inventory_path(meta, TableRef.parse(d.name)).unlink()
        crash_point("backup.inventory_forgotten")


def collect_table(
    warehouse: Path, table: TableRef, barrier_ms: int, prev: TableInventory | None,
    plan: RoundPlan, reseed: bool,
) -> tuple[TableChange | None, TableLog, TableRef | None, TableInventory | None]:
    """`_collect_table`, with any unexpected failure turned into a DrsyncError naming the table
    (the round leaves that table out; one bad table never stops the others)."""
    try:
        return _collect_table(warehouse, table, barrier_ms, prev, plan, reseed)
    except DrsyncError:
        raise
    except OSError as e:
        raise TableFormatError(f"table {table.name}: {e.strerror or e} ({e.filename})") from None
    except Exception as e:
        raise TableFormatError(
            f"table {table.name}: cannot read its log ({type(e).__name__}: {e})") from None


def _collect_table(
    warehouse: Path, table: TableRef, barrier_ms: int, prev: TableInventory | None,
    plan: RoundPlan, reseed: bool,
) -> tuple[TableChange | None, TableLog, TableRef | None, TableInventory | None]:
    """One table's change: a reseed or a re-created table is shipped in full as a replacement;
    a new table carrying a vanished table's id is that table, moved (not copied again).
    Returns the change, the listing, the name it moved from, and the inventory it builds on."""
    tdir = table.path(warehouse)
    listing = require_format(tdir).read_log(tdir)
    if reseed and prev is not None:
        log.info("table %s: reseed requested; copying it again in full", table.name)
        change = collect_changes(tdir, table.name, listing, barrier_ms, None)
        assert change is not None
        change.replace = True
        return change, listing, None, None
    try:
        change = collect_changes(tdir, table.name, listing, barrier_ms, prev)
    except TableRecreatedError as e:
        log.warning("%s; shipping it again in full, as a replacement", e.message)
        change = collect_changes(tdir, table.name, listing, barrier_ms, None)
        assert change is not None
        change.replace = True
        change.warnings.append(f"{e.message}; replaced as a whole on the standby")
        return change, listing, None, None
    if prev is None and change is not None and plan.vanished:
        moved = plan.match_rename(change.table_id)
        if moved is not None:
            old_ref, old_inv = moved
            log.info("table %s is %s moved (table id %s): moved on the standby, not copied",
                     table.name, old_ref.name, change.table_id)
            try:
                return (collect_changes(tdir, table.name, listing, barrier_ms, old_inv), listing,
                        old_ref, old_inv)
            except TableRecreatedError:
                plan.vanished[old_inv.table_id or ""] = moved  # not the same table after all
    return change, listing, None, prev


# --- reseed intent ------------------------------------------------------------------------


def read_reseed(meta: Path) -> dict[str, object]:
    return read_json_object(meta / RESEED_FILE) or {}


def request_reseed(meta: Path, tables: list[str] | None) -> None:
    """Ask the next round to copy `tables` (None: every published table) again from scratch."""
    ensure_dir(meta)
    with operation_lock(meta / LOCK_DIR, "reseed"):
        cur = read_reseed(meta)
        if tables is None:
            cur["all"] = True
        else:
            old = cur.get("tables")
            cur["tables"] = sorted(set(old if isinstance(old, list) else []) | set(tables))
        atomic_write_json(meta / RESEED_FILE, cur)


def clear_reseed(meta: Path, done_all: bool, done: set[str]) -> None:
    """Forget the requests this round carried out (a request made meanwhile stays)."""
    with operation_lock(meta / LOCK_DIR, "reseed"):
        cur = read_reseed(meta)
        if not cur:
            return
        if done_all:
            cur.pop("all", None)
        old = cur.get("tables")
        left = [t for t in (old if isinstance(old, list) else []) if t not in done]
        cur["tables"] = left
        if not left and not cur.get("all"):
            with contextlib.suppress(FileNotFoundError):
                (meta / RESEED_FILE).unlink()
            return
        atomic_write_json(meta / RESEED_FILE, cur)
