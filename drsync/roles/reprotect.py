"""Reprotect (run on the old primary after a failover): become the new primary's standby.

Per table, the newest version both sides share is the newest one with the same number *and* a
byte-identical commit file: after a failover both may hold different commits under one number.
What the old primary wrote after it (log files, and the data files only those commits add) is
moved into `<old-primary-warehouse>/_drsync/reprotect-quarantine/<time>/` (never deleted; the
rows and files are reported). The replicated tables are those the new primary holds
inventories for; a replicated table with no commit in common is set aside whole (and copied in
full), one the old primary lacks is copied in full, and the old primary's other tables are
left as they are.

The new primary's failover wrote inventories for exactly the versions of its recovery point,
which is what the old primary now holds: its first set builds on the failover key, which the
new standby state names as restored, and carries only what changed since. Where a table's
shared version differs from that inventory (the old primary lacked a commit), the inventory is
rebuilt from the old primary's copy, which is now exactly at the shared version.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from drsync.config import Settings
from drsync.errors import RoleError
from drsync.locks import operation_lock
from drsync.primary import load_inventory
from drsync.roles import audit
from drsync.roles.epoch import read_role, write_role
from drsync.roles.fence import make_readonly
from drsync.roles.sites import (
    Pair,
    archive,
    remove,
    require_local,
    stamp,
    swapped_name,
    write_inventories_merge,
    write_last_restored,
)
from drsync.roles.tablelog import SetAside, inventory_at, set_aside_above, set_aside_table, shared_version
from drsync.state import (
    LOCK_DIR,
    MANIFEST_DIR,
    PrimaryState,
    StandbyState,
    StandbyTable,
    clear_stop,
    load_state,
    save_state,
)
from drsync.tableformat.delta import LOG_DIR
from drsync.warehouse import DRSYNC_DIR, TableRef

Say = Callable[[str], None]


def run_reprotect(settings: Settings, config: Path, *, say: Say = print) -> int:
    require_local(settings, "reprotect")
    pair = Pair(settings, config)
    own, peer = read_role(pair.pm), read_role(pair.sm)
    if own.role == "standby" and own.epoch == peer.epoch and peer.role == "primary":
        say(f"nothing to do: {pair.pm} is already the standby of the new primary (epoch {own.epoch})")
        return 0
    if peer.role != "primary" or peer.epoch <= own.epoch:
        raise RoleError(f"reprotect: the other site ({pair.sm}) is not a primary of a newer role epoch "
                        f"(it is {peer.role or 'unknown'} at {peer.epoch}, this site at {own.epoch})",
                        hint="reprotect follows a failover; run `drsync failover` on the standby first")
    new_primary: PrimaryState = load_state(pair.sm, PrimaryState)
    if new_primary.last_key is None or new_primary.last_barrier_ms is None:
        raise RoleError(f"reprotect: the new primary's state in {pair.sm} names no set")
    key, barrier_ms = new_primary.last_key, new_primary.last_barrier_ms
    quarantine = pair.pw / DRSYNC_DIR / "reprotect-quarantine" / stamp()
    with operation_lock(pair.pm / LOCK_DIR, "backup"):  # no round of the old primary meanwhile
        results: list[SetAside] = []
        tables: dict[str, StandbyTable] = {}
        # The replicated tables: those the new primary holds inventories for (written by the
        # failover from its recovery point). Tables of the old primary's own stay as they are.
        for t in _inventoried(pair.sm):
            mine, theirs = t.path(pair.pw), t.path(pair.sw)
            where = quarantine / t.db / t.schema / t.table
            if not (mine / LOG_DIR).is_dir():
                _drop_inventory(pair, t)  # the old primary lacks it: the new one copies it in full
                continue
            shared = shared_version(mine, theirs) if (theirs / LOG_DIR).is_dir() else None
            if shared is None:
                results.append(set_aside_table(mine, t.name, where))
                _drop_inventory(pair, t)  # nothing in common: copied in full
                continue
            results.append(set_aside_above(mine, t.name, shared, where))
            inv = load_inventory(pair.sm, t)
            if inv is None or inv.version != shared:
                inv = inventory_at(mine, t.name, shared)
                write_inventories_merge(pair.sm, {t.name: inv})
                say(f"{t.name}: the new primary's inventory rebuilt at version {shared}")
            tables[t.name] = StandbyTable(version=shared, table_id=inv.table_id, barrier_ms=barrier_ms)
            make_readonly(mine)
        remove(pair.sm / "tables" / "index.json")  # the unchanged-table index must look again
        # The old primary's own sets would sit in its new inbox: out of the way, kept.
        old = pair.pm / "role-history" / f"{stamp()}-reprotect-old-sets"
        if (pair.pm / MANIFEST_DIR).exists():
            os.makedirs(old, exist_ok=True)
            os.replace(pair.pm / MANIFEST_DIR, old / MANIFEST_DIR)
        write_role(pair.pm, "standby", peer.epoch)
        save_state(pair.pm, StandbyState(last_key=key, last_barrier_ms=barrier_ms, tables=tables,
                                         role_epoch=peer.epoch))
        write_last_restored(pair.pm, key, barrier_ms)
        archive(pair.pm, [PrimaryState.FILE, "tables", "fence.json"], "reprotect-was-primary")
        remove(pair.pm / "stop-backup.intent")
    clear_stop(pair.sm, "backup")  # the new primary ships again
    aside = [r for r in results if r.files]
    for r in aside:
        say(r.describe())
    rows = sum(r.rows for r in aside)
    files = sum(len(r.files) for r in aside)
    say(f"reprotect done at role epoch {peer.epoch}: {pair.pw} is the standby of {pair.sw} from set {key}; "
        f"{files} file(s) ({rows} row(s)) set aside in {quarantine}")
    say("replication continues incrementally: run drsync backup -c "
        f"{swapped_name(config.name)} on the new primary")
    audit.record([pair.pm, pair.sm], "reprotect", config, f"done: {files} file(s), {rows} row(s) set aside",
                 peer.epoch, "; ".join(r.describe() for r in aside))
    return 0


def _drop_inventory(pair: Pair, t: TableRef) -> None:
    (pair.sm / "tables" / t.db / t.schema / f"{t.table}.json").unlink(missing_ok=True)


def _inventoried(meta: Path) -> list[TableRef]:
    root = meta / "tables"
    found = [TableRef(p.parent.parent.name, p.parent.name, p.stem) for p in root.glob("*/*/*.json")]
    return sorted(found, key=lambda t: t.name)
