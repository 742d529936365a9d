"""sets/barriers.py: a set's whole barrier map from manifests that carry only what moved."""

from __future__ import annotations

from pathlib import Path

import pytest

from drsync.errors import DrsyncError, ManifestError
from drsync.fsutil import atomic_write_json, ensure_dir
from drsync.sets.barriers import delta_of, full_versions, set_versions
from drsync.sets.manifest import Manifest
from drsync.site.layout import MetadataLayout


def manifest(key: str, prior: str | None, versions: dict[str, int], base: str | None = None,
             dropped: list[str] | None = None) -> Manifest:
    return Manifest(key=key, prior_key=prior, barrier_utc="x", barrier_ms=0, created_utc="x",
                    versions=versions, versions_base=base, versions_dropped=dropped or [])


def test_delta_carries_new_moved_and_dropped_tables_only() -> None:
    base = {"a.s.t1": 3, "a.s.t2": 5, "a.s.t3": 1}
    full = {"a.s.t1": 3, "a.s.t2": 6, "a.s.t4": 0}
    changed, dropped = delta_of(full, base)
    assert changed == {"a.s.t2": 6, "a.s.t4": 0}
    assert dropped == ["a.s.t3"]
    m = manifest("k2", "k1", changed, "k1", dropped)
    assert full_versions(m, base) == full


def test_whole_map_manifest_needs_no_base() -> None:
    assert full_versions(manifest("k1", None, {"a.s.t1": 1}), None) == {"a.s.t1": 1}


def test_missing_base_map_is_a_clear_error() -> None:
    m = manifest("20261123_141502", "20261123_141000", {"a.s.t1": 2}, "20261123_141000")
    with pytest.raises(ManifestError, match="since set 20261123_141000, whose barrier map is missing"):
        full_versions(m, None)


def write(meta: Path, m: Manifest) -> None:
    ensure_dir(MetadataLayout(meta).manifests)
    MetadataLayout(meta).manifest(m.key).write_bytes(m.to_bytes())


def test_primary_map_from_its_file_else_rebuilt_along_the_chain(tmp_path: Path) -> None:
    k1, k2, k3 = "20261123_141000", "20261123_141100", "20261123_141200"
    write(tmp_path, manifest(k1, None, {"a.s.t1": 1, "a.s.t2": 1}))
    write(tmp_path, manifest(k2, k1, {"a.s.t2": 2, "a.s.t3": 0}, k1))
    write(tmp_path, manifest(k3, k2, {"a.s.t1": 4}, k2, ["a.s.t2"]))
    assert set_versions(tmp_path, k3) == {"a.s.t1": 4, "a.s.t3": 0}
    assert set_versions(tmp_path, k2) == {"a.s.t1": 1, "a.s.t2": 2, "a.s.t3": 0}
    # A map file short-cuts the walk (and is what a round writes for its newest set).
    ensure_dir(MetadataLayout(tmp_path).barriers)
    atomic_write_json(MetadataLayout(tmp_path).barrier_map(k2), {"a.s.t1": 7, "a.s.t3": 0})
    assert set_versions(tmp_path, k3) == {"a.s.t1": 4, "a.s.t3": 0}
    atomic_write_json(MetadataLayout(tmp_path).barrier_map(k1), {"a.s.t9": 9})
    MetadataLayout(tmp_path).barrier_map(k2).unlink()
    assert set_versions(tmp_path, k2) == {"a.s.t9": 9, "a.s.t2": 2, "a.s.t3": 0}


def test_primary_map_with_no_whole_map_anywhere(tmp_path: Path) -> None:
    k1, k2 = "20261123_141000", "20261123_141100"
    write(tmp_path, manifest(k2, k1, {"a.s.t2": 2}, k1))
    with pytest.raises(DrsyncError, match=r"manifest .*20261123_141000.* does not exist"):
        set_versions(tmp_path, k2)
