"""The new primary's side of a reprotect, on its own host: what the old primary asks of it
(role, chain head, inventoried tables, commit hashes) and taking the rebuilt inventories.
Called in-process (transport=local) or by the new primary's agent (SSH)."""

from __future__ import annotations

from drsync.config import Settings
from drsync.primary.changes import TableInventory
from drsync.primary.membership import load_inventory
from drsync.roles.epoch import RoleRecord, read_role
from drsync.roles.sites import remove, write_inventories_merge
from drsync.roles.tablelog import Commits, commit_hashes
from drsync.site.layout import MetadataLayout
from drsync.site.state import PrimaryState, clear_stop, load_state
from drsync.site.warehouse import TableRef


class NewPrimary:
    """The new primary on this host (its side of `settings` is the standby side)."""

    def __init__(self, settings: Settings) -> None:
        self.meta, self.warehouse = settings.restore_metadata_destination, settings.standby_warehouse

    def role(self) -> RoleRecord:
        return read_role(self.meta)

    def head(self) -> tuple[str | None, int | None]:
        state: PrimaryState = load_state(self.meta, PrimaryState)
        return state.last_key, state.last_barrier_ms

    def inventoried(self) -> dict[str, tuple[int, str | None]]:
        out: dict[str, tuple[int, str | None]] = {}
        layout = MetadataLayout(self.meta)
        for p in layout.inventory_files():
            ref = TableRef(*layout.inventory_table(p))
            inv = load_inventory(self.meta, ref)
            if inv is not None:
                out[ref.name] = (inv.version, inv.table_id)
        return out

    def info(self) -> dict[str, object]:
        """Role record, chain head and inventoried tables, as the reprotect asks for them."""
        rec = self.role()
        key, barrier_ms = self.head()
        return {"role": rec.role, "epoch": rec.epoch, "key": key, "barrier_ms": barrier_ms,
                "tables": {n: list(v) for n, v in self.inventoried().items()}}

    def commits(self, name: str) -> Commits | None:
        return commit_hashes(TableRef.parse(name).path(self.warehouse))

    def finish(self, rebuilt: dict[str, TableInventory], drop: list[str]) -> None:
        """Inventories for what the old primary holds now; then the new primary ships again."""
        write_inventories_merge(self.meta, rebuilt)
        for name in drop:
            t = TableRef.parse(name)
            MetadataLayout(self.meta).inventory(t).unlink(missing_ok=True)
        remove(MetadataLayout(self.meta).index)  # the unchanged-table index must look again
        clear_stop(self.meta, "backup")
