"""Packing a set on the primary: its files into bundles (compressed or stored, decided per file),
then the manifest that describes them (COMPRESS step of the round in primary.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from drsync.config import Settings
from drsync.faults import crash_point
from drsync.primary.changes import TableChange
from drsync.sets.bundle import (
    BundleEntry,
    BundleResult,
    plan_bundles,
    worth_compressing,
    write_bundle,
)
from drsync.sets.manifest import (
    BundleInfo,
    FailedObject,
    Manifest,
    ManifestFile,
    ManifestTable,
)
from drsync.sets.rawfile import RAW_MIN_BYTES, place_raw
from drsync.site.layout import bundle_name
from drsync.site.progress import ProgressTracker
from drsync.site.state import (
    PrimaryState,
)
from drsync.site.warehouse import TableRef
from drsync.tableformat import get as get_format
from drsync.tableformat.base import FileRole


def compression(settings: Settings) -> Literal["zstd", "none"]:
    if settings.compression_type == "none" or settings.compression_level == 0:
        return "none"
    return "zstd"


def write_bundles(
    settings: Settings, key: str, set_dir: Path,
    changes: list[tuple[TableRef, TableChange]], tracker: ProgressTracker,
) -> list[BundleResult]:
    warehouse = settings.primary_warehouse
    entries = [
        BundleEntry(
            member=f"{table.relpath}/{f.path}", size=f.size, mtime_ns=f.mtime_ns,
            source=None if f.content is not None else table.path(warehouse) / f.path,
            content=f.content, root=None if f.content is not None else table.path(warehouse),
        )
        for table, change in changes for f in change.files
    ]
    is_data = [get_format(change.format).role(f.kind) is FileRole.DATA
               for _, change in changes for f in change.files]
    # Compressing what does not shrink only burns the CPU that encryption needs (the link is
    # CPU-bound on 2 cores). Log files always shrink; data files are sampled (bench/RESULTS.md).
    chosen = compression(settings)
    stored: list[BundleEntry] = []
    packed: list[BundleEntry] = []
    raw: list[BundleEntry] = []  # large data files that travel as they are (rawfile.py)
    for e, data in zip(entries, is_data, strict=True):
        shrinks = chosen == "zstd" and (e.source is None or not e.member.endswith(".parquet")
                                        or worth_compressing(e.source))
        if not shrinks and data and e.source is not None and e.size >= RAW_MIN_BYTES:
            raw.append(e)
        else:
            (packed if shrinks else stored).append(e)
    groups: list[tuple[list[BundleEntry], Literal["zstd", "none", "raw"]]] = [
        (g, "none") for g in plan_bundles(stored)]
    groups += [(g, chosen) for g in plan_bundles(packed)]
    groups += [([e], "raw") for e in raw]
    tracker.total = sum(e.size for e in entries)
    tracker.measure = "produced"

    def one(i: int, group: list[BundleEntry], compression: Literal["zstd", "none", "raw"]) -> BundleResult:
        if compression == "raw":
            r = place_raw(set_dir / bundle_name(key, i, compression), group[0])
            tracker.add(r.raw_bytes, r.raw_bytes)
            crash_point("backup.bundle_written")
            return r
        r = write_bundle(set_dir / bundle_name(key, i, compression), group, compression,
                         settings.compression_level, lambda raw, out: tracker.add(raw, out))
        crash_point("backup.bundle_written")
        return r

    with ThreadPoolExecutor(max_workers=settings.workers) as pool:
        return list(pool.map(lambda a: one(a[0], *a[1]), enumerate(groups)))


def make_manifest(
    settings: Settings, state: PrimaryState, key: str, cut: datetime, barrier_ms: int,
    changes: list[tuple[TableRef, TableChange]], results: list[BundleResult],
    versions: dict[str, int], failed: list[FailedObject],
) -> Manifest:
    packed = {p.member: (p, r.path.name) for r in results for p in r.packed}
    missing = {m for r in results for m in r.missing}
    tables: list[ManifestTable] = []
    for table, change in changes:
        files: list[ManifestFile] = []
        warnings = list(change.warnings)
        for f in change.files:
            member = f"{table.relpath}/{f.path}"
            if member in missing:
                # Vanished between collect and packing (VACUUM): mirror the primary as it is.
                change.inventory.files.pop(f.path, None)
                change.expose_at_once = True
                warnings.append(f"table {table.name}: {f.path} vanished on the primary before it "
                                "was packed; mirrored as it is")
                continue
            p, bundle = packed[member]
            files.append(ManifestFile.model_validate({
                "path": f.path, "kind": f.kind, "size": p.size, "mtime_ns": f.mtime_ns,
                "version": f.version, "blake2b": p.blake2b, "bundle": bundle}))
        tables.append(ManifestTable.model_validate({
            "name": table.name, "format": change.format, "table_id": change.table_id, "mode": change.mode,
            "from_version": change.from_version, "to_version": change.to_version, "files": files,
            "deletions": change.deletions, "ddl": change.ddl, "warnings": warnings,
            "expose_at_once": change.expose_at_once, "replace": change.replace,
            "catalog": change.catalog,
        }))
    return Manifest(
        key=key, prior_key=state.last_key,
        primary_cluster_id=str(settings.primary_cluster_id) if settings.primary_cluster_id else None,
        standby_cluster_id=str(settings.standby_cluster_id) if settings.standby_cluster_id else None,
        role_epoch=state.role_epoch, barrier_utc=cut.isoformat(), barrier_ms=barrier_ms,
        created_utc=datetime.now(UTC).isoformat(), status="partial" if failed else "complete",
        tables=tables, versions=versions, failed_objects=failed,
        bundles=[BundleInfo(name=r.path.name, size=r.size, blake2b=r.blake2b, compression=r.compression,
                            files=len(r.packed), raw_bytes=r.raw_bytes)
                 for r in results if r.packed or r.compression != "raw"],  # a vanished raw file: none
    )
