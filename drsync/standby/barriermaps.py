"""The standby's barrier map of a set: the whole map, rebuilt from the set's manifest.

A 1.3 manifest carries only the tables whose version moved since the set it builds on
(sets/barriers.py); the standby has that set's whole map as its newest barrier map file,
`<standby-warehouse>/_drsync/barriers/<key>.json` (written when it was applied; retention
never removes the newest). Read before anything of the set is touched: a set whose base map
is missing applies nothing.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from drsync.fsutil import read_json_object
from drsync.sets.barriers import full_versions
from drsync.sets.manifest import Manifest, validate_table_name
from drsync.site.layout import WarehouseLayout

__all__ = ["standby_versions"]


def standby_versions(warehouse: Path, m: Manifest) -> dict[str, int]:
    """Every protected table's version at set `m`'s barrier (ManifestError: base map missing)."""
    base: dict[str, int] | None = None
    if m.versions_base is not None:
        raw = read_json_object(WarehouseLayout(warehouse).barrier_map(m.versions_base))
        if raw is not None:
            with contextlib.suppress(TypeError, ValueError):
                # The standby's own file, but names feed paths: checked as a manifest's are.
                base = {validate_table_name(str(n)): int(v) for n, v in raw.items()}
    return full_versions(m, base)
