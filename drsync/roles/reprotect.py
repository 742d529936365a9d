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

The new primary is reached as a `LocalPeer` (transport=local) or through its agent (SSH): the
agent lets an old primary in for these operations only (`hello` with purpose "reprotect").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drsync.config import Settings
from drsync.errors import RoleError
from drsync.primary.changes import TableInventory
from drsync.primary.round import load_inventory
from drsync.roles import audit
from drsync.roles.epoch import RoleRecord, read_role, write_role
from drsync.roles.fence import make_readonly
from drsync.roles.sites import (
    Pair,
    archive,
    remove,
    stamp,
    swapped_config,
    swapped_name,
    write_inventories_merge,
    write_last_restored,
)
from drsync.roles.tablelog import (
    Commits,
    SetAside,
    commit_hashes,
    inventory_at,
    set_aside_above,
    set_aside_table,
    shared_version,
)
from drsync.site.locks import operation_lock
from drsync.site.state import (
    LOCK_DIR,
    MANIFEST_DIR,
    PrimaryState,
    StandbyState,
    StandbyTable,
    clear_stop,
    load_state,
    save_state,
)
from drsync.site.warehouse import DRSYNC_DIR, TableRef

Say = Callable[[str], None]
class LocalPeer:
    """The new primary on this host (its side of `settings` is the standby side)."""

    def __init__(self, settings: Settings) -> None:
        self.meta, self.warehouse = settings.restore_metadata_destination, settings.standby_warehouse

    def close(self) -> None:
        pass

    def role(self) -> RoleRecord:
        return read_role(self.meta)

    def head(self) -> tuple[str | None, int | None]:
        state: PrimaryState = load_state(self.meta, PrimaryState)
        return state.last_key, state.last_barrier_ms

    def inventoried(self) -> dict[str, tuple[int, str | None]]:
        root = self.meta / "tables"
        out: dict[str, tuple[int, str | None]] = {}
        for p in sorted(root.glob("*/*/*.json")) if root.exists() else []:
            ref = TableRef(p.parent.parent.name, p.parent.name, p.stem)
            inv = load_inventory(self.meta, ref)
            if inv is not None:
                out[ref.name] = (inv.version, inv.table_id)
        return out

    def commits(self, name: str) -> Commits | None:
        return commit_hashes(TableRef.parse(name).path(self.warehouse))

    def finish(self, rebuilt: dict[str, TableInventory], drop: list[str]) -> None:
        """Inventories for what the old primary holds now; then the new primary ships again."""
        write_inventories_merge(self.meta, rebuilt)
        for name in drop:
            t = TableRef.parse(name)
            (self.meta / "tables" / t.db / t.schema / f"{t.table}.json").unlink(missing_ok=True)
        remove(self.meta / "tables" / "index.json")  # the unchanged-table index must look again
        clear_stop(self.meta, "backup")


class SshPeer:
    """The new primary through its agent (transport=ssh)."""

    def __init__(self, settings: Settings) -> None:
        from drsync.transport.ssh import SshTransport

        self.link = SshTransport(settings, purpose="reprotect")
        self.info: dict[str, Any] = self.link.call_once("reprotectinfo")

    def close(self) -> None:
        self.link.close()

    def role(self) -> RoleRecord:
        role = self.info.get("role")
        return RoleRecord(role if role in ("primary", "standby", "independent") else None,
                          int(self.info.get("epoch") or 0))

    def head(self) -> tuple[str | None, int | None]:
        return self.info.get("key"), self.info.get("barrier_ms")

    def inventoried(self) -> dict[str, tuple[int, str | None]]:
        return {str(n): (int(v[0]), v[1]) for n, v in dict(self.info.get("tables") or {}).items()}

    def commits(self, name: str) -> Commits | None:
        raw = self.link.call_once("commits", table=name).get("commits")
        return None if raw is None else {int(v): (int(c[0]), str(c[1])) for v, c in raw.items()}

    def finish(self, rebuilt: dict[str, TableInventory], drop: list[str]) -> None:
        self.link.call_once("reprotected", inventories={n: i.to_json() for n, i in rebuilt.items()},
                            drop=drop)


def run_reprotect(settings: Settings, config: Path, *, say: Say = print) -> int:
    peer: LocalPeer | SshPeer = LocalPeer(settings) if settings.transport == "local" else SshPeer(settings)
    try:
        return _reprotect(Pair(settings, config), peer, say)
    finally:
        peer.close()


def _reprotect(pair: Pair, peer: LocalPeer | SshPeer, say: Say) -> int:
    config = pair.config
    own, new = read_role(pair.pm), peer.role()
    if own.role == "standby" and own.epoch == new.epoch and new.role == "primary":
        say(f"nothing to do: {pair.pm} is already the standby of the new primary (epoch {own.epoch})")
        return 0
    if new.role != "primary" or new.epoch <= own.epoch:
        raise RoleError(f"reprotect: the other site ({pair.sm}) is not a primary of a newer role epoch "
                        f"(it is {new.role or 'unknown'} at {new.epoch}, this site at {own.epoch})",
                        hint="reprotect follows a failover; run `drsync failover` on the standby first")
    key, barrier_ms = peer.head()
    if key is None or barrier_ms is None:
        raise RoleError(f"reprotect: the new primary's state in {pair.sm} names no set")
    swapped_config(config, write=True)  # the new direction runs with the swapped config
    quarantine = pair.pw / DRSYNC_DIR / "reprotect-quarantine" / stamp()
    with operation_lock(pair.pm / LOCK_DIR, "backup"):  # no round of the old primary meanwhile
        results: list[SetAside] = []
        tables: dict[str, StandbyTable] = {}
        rebuilt: dict[str, TableInventory] = {}
        drop: list[str] = []
        for name, (inv_version, table_id) in sorted(peer.inventoried().items()):
            t = TableRef.parse(name)
            mine, where = t.path(pair.pw), quarantine / t.db / t.schema / t.table
            mine_commits = commit_hashes(mine)
            if mine_commits is None:
                drop.append(name)  # the old primary lacks it: the new one copies it in full
                continue
            theirs = peer.commits(name)
            shared = shared_version(mine_commits, theirs) if theirs is not None else None
            if shared is None:
                results.append(set_aside_table(mine, name, where))
                drop.append(name)  # nothing in common: copied in full
                continue
            results.append(set_aside_above(mine, name, shared, where))
            if inv_version != shared:
                rebuilt[name] = inventory_at(mine, name, shared)
                table_id = rebuilt[name].table_id
                say(f"{name}: the new primary's inventory rebuilt at version {shared}")
            tables[name] = StandbyTable(version=shared, table_id=table_id, barrier_ms=barrier_ms)
            make_readonly(mine)
        # The old primary's own sets would sit in its new inbox: out of the way, kept.
        if (pair.pm / MANIFEST_DIR).exists():
            old = pair.pm / "role-history" / f"{stamp()}-reprotect-old-sets"
            os.makedirs(old, exist_ok=True)
            os.replace(pair.pm / MANIFEST_DIR, old / MANIFEST_DIR)
        write_role(pair.pm, "standby", new.epoch)
        save_state(pair.pm, StandbyState(last_key=key, last_barrier_ms=barrier_ms, tables=tables,
                                         role_epoch=new.epoch))
        write_last_restored(pair.pm, key, barrier_ms)
        archive(pair.pm, [PrimaryState.FILE, "tables"], "reprotect-was-primary")
        remove(pair.pm / "stop-backup.intent")
    peer.finish(rebuilt, drop)  # the new primary ships again
    aside = [r for r in results if r.files]
    for r in aside:
        say(r.describe())
    rows = sum(r.rows for r in aside)
    files = sum(len(r.files) for r in aside)
    say(f"reprotect done at role epoch {new.epoch}: {pair.pw} is the standby of {pair.sw} from set {key}; "
        f"{files} file(s) ({rows} row(s)) set aside in {quarantine}")
    say("replication continues incrementally: run drsync backup -c "
        f"{swapped_name(config.name)} on the new primary")
    audit.record([pair.pm, pair.sm], "reprotect", config, f"done: {files} file(s), {rows} row(s) set aside",
                 new.epoch, "; ".join(r.describe() for r in aside))
    return 0
