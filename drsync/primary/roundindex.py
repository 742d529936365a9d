"""The round index: what makes an unchanged table cost about one listing of its log.

One small file per site (`tables/index.json`, site/layout.py), read once per round (a daemon
keeps it in memory between rounds instead: roundmemory.py): per table the log signature it
had when it was last found idle and fully shipped, and its version then. A table whose
signature is the same is skipped unread: no inventory loaded, no log parsed. The signature is
the format's (`TableFormat.log_signature` / `probe`, whose contract is that it changes
whenever the committed state does: tableformat/base.py), taken as the table is discovered
(site/warehouse.scan_tables); any other table takes the full path (primary/membership.py).

The file is written with no fsync after the round's inventories (round.py): lost or stale, it
only costs one full look at each table.
"""

from __future__ import annotations

from pathlib import Path

from drsync.fsutil import read_json_object, write_advisory_json
from drsync.site.layout import MetadataLayout
from drsync.tableformat import probe

__all__ = ["RoundIndex", "log_signature"]


def log_signature(table_dir: Path) -> str | None:
    """Identity of a table's log as it is now (None: no table of a known format, or unreadable),
    as the round's discovery takes it (site/warehouse.scan_tables)."""
    found = probe(str(table_dir))
    return found[1] if found is not None else None


class RoundIndex:
    """The previous round's index (read) and this round's (built as tables are decided)."""

    def __init__(self, entries: dict[str, list[object]]) -> None:
        self._old = entries
        self._new: dict[str, list[object]] = {}

    @classmethod
    def load(cls, meta: Path) -> RoundIndex:
        return cls(read_json_object(MetadataLayout(meta).index) or {})

    def unchanged(self, name: str, sig: str | None) -> int | None:
        """The version of a table whose log is as it was when indexed (kept in the new index),
        else None: the table needs the full look."""
        known = self._old.get(name)
        if sig is None or not isinstance(known, list) or len(known) != 2 or known[0] != sig:
            return None
        version = known[1]
        if not isinstance(version, int):
            return None
        self._new[name] = known
        return version

    def record(self, name: str, sig: str, version: int) -> None:
        """Index a table found idle: nothing beyond what was shipped, no removed file pending."""
        self._new[name] = [sig, version]

    @property
    def entries(self) -> dict[str, list[object]]:
        """This round's index (what `save` writes): a daemon keeps it for its next round."""
        return self._new

    def save(self, meta: Path) -> None:
        write_advisory_json(MetadataLayout(meta).index, self._new)
