"""The two halves of a role swap, each run on the host that owns the side: `promote` turns a
standby into the primary, `demote` a primary into the standby, both at the same final set.

Both can be repeated (a crash mid-way is completed by running them again): states are only
written when not already at the new epoch, files already moved stay moved. The switchover
calls `promote` in-process (transport=local) or through the standby's agent (SSH).
"""

from __future__ import annotations

from dataclasses import dataclass

from drsync.config import Settings
from drsync.faults import crash_point
from drsync.roles.epoch import write_role
from drsync.roles.fence import make_readonly, make_writable
from drsync.roles.sites import archive, write_inventories, write_last_restored
from drsync.roles.tablelog import inventory_at
from drsync.site.state import (
    LAST_RESTORED,
    PrimaryState,
    StandbyState,
    StandbyTable,
    clear_stop,
    load_state,
    save_state,
)
from drsync.site.warehouse import TableRef


@dataclass(frozen=True)
class SwapPoint:
    """Where both sides are byte-identical: the final set and every table's version there."""

    epoch: int
    key: str
    barrier_ms: int
    versions: dict[str, int]
    table_ids: dict[str, str | None]


def promote(settings: Settings, p: SwapPoint) -> None:
    """The standby side of `settings` becomes the primary at `p`."""
    meta, warehouse = settings.restore_metadata_destination, settings.standby_warehouse
    # Role first: from here the old primary's rounds and sets are refused by epoch.
    write_role(meta, "primary", p.epoch)
    inventories = {n: inventory_at(TableRef.parse(n).path(warehouse), n, v) for n, v in p.versions.items()}
    write_inventories(meta, inventories)
    current = load_state(meta, PrimaryState) if (meta / PrimaryState.FILE).exists() else None
    if current is None or current.role_epoch != p.epoch:
        save_state(meta, PrimaryState(last_key=p.key, last_barrier_ms=p.barrier_ms, role_epoch=p.epoch))
    crash_point("switchover.promoted")
    archive(meta, [StandbyState.FILE, LAST_RESTORED], "switchover-was-standby")
    clear_stop(meta, "restore")
    for name in p.versions:
        make_writable(TableRef.parse(name).path(warehouse))


def demote(settings: Settings, p: SwapPoint) -> None:
    """The primary side of `settings` becomes the standby at `p`."""
    meta, warehouse = settings.primary_metadata_destination, settings.primary_warehouse
    write_role(meta, "standby", p.epoch)
    current = load_state(meta, StandbyState) if (meta / StandbyState.FILE).exists() else None
    if current is None or current.role_epoch != p.epoch:
        tables = {n: StandbyTable(version=v, table_id=p.table_ids.get(n), barrier_ms=p.barrier_ms)
                  for n, v in p.versions.items()}
        save_state(meta, StandbyState(last_key=p.key, last_barrier_ms=p.barrier_ms, tables=tables,
                                      role_epoch=p.epoch))
    write_last_restored(meta, p.key, p.barrier_ms)
    crash_point("switchover.demoted")
    archive(meta, [PrimaryState.FILE, "tables"], "switchover-was-primary")
    clear_stop(meta, "backup")
    for name in p.versions:
        make_readonly(TableRef.parse(name).path(warehouse))
