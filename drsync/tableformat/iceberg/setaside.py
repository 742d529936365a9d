"""Taking an Iceberg table back to a version (failover: the last barrier; roles/tablelog.py).

Iceberg's commit point is the pointer, so going back is the install order run backwards:

1. the pointer (`version-hint.text`, and after it the standby catalog's row) is switched back
   to the metadata JSON of that version (temp + fsync + rename): from this moment every reader
   sees that version, whole, and nothing reads what lies above it;
2. then what only the metadata above reaches is moved to the quarantine: data and delete
   files, manifests, manifest lists (and manifests or lists no metadata reaches: what a set
   killed before its metadata JSON left), and last the metadata JSON files above the
   version, newest first.

A kill anywhere converges: a re-run finds the pointer already at the version and the metadata
files above it still in `metadata/` (they go last), so it finds what they alone reach again.
Files of the version itself are never moved (what it reaches is subtracted).
"""

from __future__ import annotations

from pathlib import Path

from drsync.errors import TableFormatError
from drsync.tableformat.base import SetAsidePlan
from drsync.tableformat.iceberg import metadata
from drsync.tableformat.iceberg.locations import HINT, META_DIR
from drsync.tableformat.iceberg.reachable import reach


def set_aside_plan(table_dir: Path, name: str, version: int) -> SetAsidePlan:
    if not (table_dir / HINT).is_file():
        raise TableFormatError(
            f"table {name}: cannot take it back to version {version}: it has no {HINT} (a table "
            "of the primary's catalog); only a replicated copy, which has one, can be",
            hint="set the table aside whole, or leave it out")
    target = metadata.version_metadata(table_dir, name, version)
    _, at = metadata.read_version(table_dir, target, name)
    keep = reach(table_dir, at, name)
    kept = set(keep.files) | set(keep.stats) | set(keep.manifests) | keep.manifest_lists | {target}
    kept_snaps = {s.get("snapshot-id") for s in at.get("snapshots") or []}
    above = sorted(((v, f"{META_DIR}/{p.name}") for p in (table_dir / META_DIR).iterdir()
                    if (v := metadata.metadata_version(p.name)) is not None and v > version
                    and p.name.endswith(".metadata.json")), reverse=True)
    files: dict[str, None] = {}  # insertion-ordered: data, manifests, manifest lists
    rows = 0
    seen_snaps: set[object] = set()
    for _, rel in above:
        try:
            _, meta = metadata.read_version(table_dir, rel, name)
        except (TableFormatError, OSError):
            continue  # an unreadable file above the version: moved, nothing followed from it
        got = reach(table_dir, meta, name)
        for group in (sorted(got.files), sorted(got.stats)):
            files.update((rel, None) for rel in group if rel not in kept)
        for snap in meta.get("snapshots") or []:
            sid = snap.get("snapshot-id")
            if sid not in kept_snaps and sid not in seen_snaps:
                seen_snaps.add(sid)
                rows += _added_records(snap)
        order = sorted(m for m in got.manifests if m not in kept) + \
            sorted(m for m in got.manifest_lists if m not in kept)
        files.update((m, None) for m in order)
    # Manifests and lists no metadata reaches: a set killed before its metadata JSON landed
    # (a standby copy holds nothing else in metadata/ that the version does not reach).
    files.update((f"{META_DIR}/{p.name}", None) for p in sorted((table_dir / META_DIR).iterdir())
                 if p.name.endswith(".avro") and not p.name.startswith(".")
                 and f"{META_DIR}/{p.name}" not in kept)
    data = [r for r in files if not r.startswith(f"{META_DIR}/")]
    logs = [r for r in files if r.startswith(f"{META_DIR}/")]
    # Everything goes in one ordered list: what the metadata above reaches first, that metadata
    # last, so a re-run after a kill still finds (through it) what it alone reaches.
    plan = SetAsidePlan(data + logs + [rel for _, rel in above], [v for v, _ in sorted(above)],
                        set(), rows)
    if metadata.read_pointer(table_dir) != target:
        plan.pointers[HINT] = metadata.hint_text(target).encode()
    return plan


def _added_records(snap: dict[str, object]) -> int:
    summary = snap.get("summary")
    try:
        return int(summary.get("added-records") or 0) if isinstance(summary, dict) else 0
    except (TypeError, ValueError):
        return 0
