"""One table of a drill: a writable Iceberg table at one version of a replicated table.

Every path in Iceberg metadata is absolute, so a fork that only linked the standby's files
would read (and a writer would add to) the *standby's* table. The fork therefore gets:

* its own copies of the metadata JSON of that version, the manifest lists and manifests it
  reaches, **rewritten** from the standby's location to the fork's (rewrite.py, the code the
  standby uses to move the primary's copy to its own location: `manifest_length` and delete
  file sizes recorded as rewritten), and a `version-hint.text` naming that metadata;
* position-delete and deletion-vector files rewritten too (data-file paths inside them);
* data, equality-delete and statistics files **hard-linked** (copied with `copy=True`): an
  Iceberg writer never changes a data file, it only adds new ones.

The location written into the fork is where readers find it after the drill's temp directory
is renamed into place (`final`), not the temp directory it is built in. Nothing is written
into the standby's files: copies are read from them, rewrites go to new files in the fork.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drsync.errors import DrillError, TableFormatError
from drsync.faults import crash_point
from drsync.fsutil import RW_FILE
from drsync.tableformat.base import ForkedTable
from drsync.tableformat.forkfiles import parent_made, place_data_file
from drsync.tableformat.iceberg import metadata, rewrite
from drsync.tableformat.iceberg.deleterewrite import POSITION_DELETES
from drsync.tableformat.iceberg.locations import HINT
from drsync.tableformat.iceberg.reachable import reach


@dataclass
class _Staged:
    """A fork file as rewrite.rewrite_table sees it (kind and table-relative path)."""

    path: str
    kind: str
    version: int | None = None


def fork_table(src: Path, dest: Path, name: str, version: int, key: str, *, copy: bool,
               final: Path | None = None) -> ForkedTable:
    """Build the fork of Iceberg table `name` (at `src`) at `version` in the new directory
    `dest`; its metadata names `final` (default `dest`) as the table's location."""
    why = f"table {name}: cannot fork barrier {key} (version {version})"
    try:
        meta_rel = metadata.version_metadata(src, name, version)
        _, meta = metadata.read_version(src, meta_rel, name)
        reached = reach(src, meta, name)
    except TableFormatError as e:
        raise DrillError(f"{why}: {e.message}", hint="fork a newer barrier (drsync drill start "
                         "--at KEY; drsync drill list shows the barriers)") from None
    # A file only older snapshots reach may be gone (the standby holds what the primary had):
    # the fork is as the standby's copy is. What the current snapshot reads must be there.
    current = _current_manifest_list(meta, name)
    if current is not None and current in reached.missing:
        raise DrillError(f"{why}: its manifest list {current} is no longer on the standby "
                         "(snapshots expired on the primary, mirrored)", hint="fork a newer barrier")
    gone = set(reached.missing)
    out = ForkedTable(name, version)
    staged: list[_Staged] = [_Staged(meta_rel, "metadata", version), _Staged(HINT, "hint", version)]
    staged += [_Staged(rel, "manifest") for rel in sorted(set(reached.manifests) - gone)]
    staged += [_Staged(rel, "manifest_list") for rel in sorted(reached.manifest_lists - gone)]
    made: set[Path] = set()
    for f in staged[2:] + staged[:1]:
        out.log_bytes += _copy(src, dest, f.path, made, why)
        out.files += 1
    # Position deletes and deletion vectors are rewritten (paths inside): copied, not linked.
    deletes = {rel for rel, (_, content) in reached.files.items() if content == POSITION_DELETES}
    for rel in sorted(deletes):
        out.copied_bytes += _copy(src, dest, rel, made, why)
        out.files += 1
        staged.append(_Staged(rel, "delete"))
    crash_point("drill.log_copied")
    others = [rel for rel, (_, content) in reached.files.items() if rel not in deletes]
    for rel in sorted(others + list(reached.stats)):
        try:
            place_data_file(src, dest, rel, made, out, copy=copy)
        except FileNotFoundError:
            raise DrillError(f"{why}: its file {rel} was removed on the standby (snapshots expired "
                             "on the primary, mirrored after a later set)",
                             hint="fork a newer barrier") from None
    try:
        rewrite.rewrite_table(dest, staged, final or dest, dest, table=name)
    except TableFormatError as e:
        raise DrillError(f"{why}: {e.message}") from None
    return out


def _current_manifest_list(meta: dict[str, Any], name: str) -> str | None:
    """The table-relative manifest list of the metadata's current snapshot (None: none)."""
    sid = meta.get("current-snapshot-id")
    for snap in meta.get("snapshots") or []:
        if snap.get("snapshot-id") == sid and isinstance(snap.get("manifest-list"), str):
            return metadata.relpath(snap["manifest-list"], meta["location"], table=name,
                                    where="current snapshot's manifest-list")
    return None


def _copy(src: Path, dest: Path, rel: str, made: set[Path], why: str) -> int:
    """Copy one file into the fork (a new inode, writable): its size."""
    target = parent_made(dest, rel, made)
    try:
        shutil.copyfile(src / rel, target)
    except FileNotFoundError:
        raise DrillError(f"{why}: {rel} was removed on the standby while the drill was made",
                         hint="run the drill again") from None
    os.chmod(target, RW_FILE)
    return target.stat().st_size

