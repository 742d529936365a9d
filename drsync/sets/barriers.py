"""A set's barrier map (every protected table and its version) without sending all of it.

Since manifest 1.3 a set carries only what moved against the set it builds on: `versions_base`
names that set (always its `prior_key`), `versions` holds the tables whose version is new or
different, `versions_dropped` the tables no longer in the map. A manifest with no
`versions_base` (1.2 and older, the first set of a chain, or whenever the primary does not hold
the base map) carries the whole map in `versions`.

Each side keeps the full map of its newest set where it needs it: the standby its barrier maps
(`<standby-warehouse>/_drsync/barriers/<key>.json`, which retention never removes for the
newest restored set), the primary `barriers/<key>.json` in its metadata destination. A map file
that is missing is rebuilt from the manifests of the chain.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from drsync.errors import DrsyncError, ManifestError
from drsync.fsutil import read_json_object
from drsync.sets.manifest import Manifest, load_manifest
from drsync.site.layout import MetadataLayout

__all__ = ["delta_of", "full_versions", "set_versions"]


def delta_of(full: dict[str, int], base: dict[str, int]) -> tuple[dict[str, int], list[str]]:
    """(versions, versions_dropped) that turn `base` into `full`."""
    changed = {n: v for n, v in full.items() if base.get(n) != v}
    return changed, sorted(set(base) - set(full))


def full_versions(m: Manifest, base: dict[str, int] | None) -> dict[str, int]:
    """The whole barrier map of set `m`, given the map of `m.versions_base` (None: it has none)."""
    if m.versions_base is None:
        return dict(m.versions)
    if base is None:
        raise ManifestError(f"set {m.key} carries only the tables that changed since set "
                            f"{m.versions_base}, whose barrier map is missing here",
                            hint="restore the sets in chain order; a reseed builds a new chain")
    out = {n: v for n, v in base.items() if n not in set(m.versions_dropped)}
    out.update(m.versions)
    return out


def set_versions(meta: Path, key: str) -> dict[str, int]:
    """The full barrier map of the primary's set `key`: its map file, else rebuilt by walking
    the manifests back to one that carries a whole map (or has a map file)."""
    layout = MetadataLayout(meta)
    chain: list[Manifest] = []
    base: dict[str, int] | None = None
    at: str | None = key
    while at is not None:
        stored = _read_map(layout.barrier_map(at))
        if stored is not None:
            base = stored
            break
        m = load_manifest(layout.manifest(at))
        chain.append(m)
        if m.versions_base is None:
            break
        at = m.versions_base
    if base is None and chain and chain[-1].versions_base is None:
        base = dict(chain.pop().versions)
    if base is None:
        raise DrsyncError(f"no barrier map of set {key} in {layout.barriers} and no manifest of its "
                          "chain carries a whole one")
    for m in reversed(chain):
        base = full_versions(m, base)
    return base


def _read_map(path: Path) -> dict[str, int] | None:
    raw = read_json_object(path)
    if raw is None:
        return None
    with contextlib.suppress(TypeError, ValueError):
        return {str(n): int(v) for n, v in raw.items()}
    return None
