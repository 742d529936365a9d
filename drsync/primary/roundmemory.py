"""What a daemon's backup rounds keep in memory from one round to the next (issue 13).

A round reads, besides the warehouse: the round index (`tables/index.json`), the list of
inventoried tables (a walk of `tables/`), the inventories of the tables it collects, and the
prior set's barrier map (`barriers/<key>.json`). A daemon runs round after round in one
process, so it keeps what its last round ended with and reads none of them again.

Only while nobody else changed them. Every other writer of the primary's inventories either
runs a backup round (a CLI `drsync backup` while the daemon sleeps: it commits a new
`last_key` and rewrites the index) or replaces or removes the `tables/` directory or the index
(role changes, set-independent: roles/sites.py). So what a round keeps is tagged with the
`last_key` it committed and the identity of the index file it wrote (inode, size, mtime, ctime);
the next round takes it only when both are still what they were, and reads the files
otherwise. A round hands its memory over at its start (`recall` empties it), so a round that
fails or stops half-way leaves nothing behind and the next one reads from disk.

Nothing here is needed for correctness: a daemon started afresh (or a one-shot CLI round)
starts with an empty memory and reads the same things from disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from drsync.primary.changes import TableChange
from drsync.primary.roundindex import RoundIndex
from drsync.sets.manifest import DesyncEntry, Rename
from drsync.site.layout import MetadataLayout, inventory_sort_key
from drsync.site.warehouse import TableRef
from drsync.tableformat.base import TableInventory

__all__ = ["Recalled", "RoundMemory", "after_round"]

Token = tuple[str | None, int, int, int, int]


@dataclass
class Recalled:
    """What the previous round of this process ended with (all as written to disk)."""

    index: dict[str, list[object]]  # the round index's entries
    inventoried: list[TableRef]  # every table with an inventory, in layout.inventory_tables order
    inventories: dict[str, TableInventory]  # the ones this process read or wrote
    barrier_map: dict[str, int]  # the whole barrier map of set `last_key`


@dataclass
class RoundMemory:
    """Held by a daemon across its backup rounds (daemon/passes.py); empty when it starts."""

    _kept: Recalled | None = None
    _token: Token | None = None
    hits: int = field(default=0)  # rounds that started from memory (tests, logs)

    def recall(self, meta: Path, last_key: str | None) -> Recalled | None:
        """What the last round kept, if the files it stands for are unchanged since; either
        way the memory is empty afterwards until `keep`."""
        kept, token = self._kept, self._token
        self._kept = self._token = None
        if kept is None or token is None or _token(meta, last_key) != token:
            return None
        self.hits += 1
        return kept

    def keep(self, meta: Path, last_key: str | None, recalled: Recalled) -> None:
        """After a round committed `last_key` and wrote its index: remember its end state."""
        token = _token(meta, last_key)
        if token is not None:
            self._kept, self._token = recalled, token

    def forget(self) -> None:
        self._kept = self._token = None


def after_round(inventoried: list[TableRef], inventories: dict[str, TableInventory],
                changes: list[tuple[TableRef, TableChange]], renames: list[Rename],
                desync: list[DesyncEntry], index: RoundIndex, versions: dict[str, int]) -> Recalled:
    """What the primary's metadata holds after this round, as the next round would read it:
    the inventories moved, forgotten and written as move_and_forget and the round did."""
    tables = {t.name: t for t in inventoried}
    for r in renames:
        tables.pop(r.from_name, None)
        tables[r.to_name] = TableRef.parse(r.to_name)
        inventories.pop(r.to_name, None)
        if r.from_name in inventories:
            inventories[r.to_name] = inventories.pop(r.from_name)
    for d in desync:
        tables.pop(d.name, None)
        inventories.pop(d.name, None)
    for t, change in changes:
        tables[t.name] = t
        inventories[t.name] = change.inventory
    order = sorted(tables.values(), key=inventory_sort_key)
    return Recalled(index.entries, order, inventories, dict(versions))


def _token(meta: Path, last_key: str | None) -> Token | None:
    try:
        st = os.stat(MetadataLayout(meta).index)
    except OSError:
        return None
    return (last_key, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
