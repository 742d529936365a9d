"""The standby's record of the hash of every replicated file, per table, and how a file is put
back: what continuous verification (standby/continuous.py) checks against and repairs with.

Manifests leave the inbox with retention, so the restore pass keeps, per table,
`file-hashes/<table dir>.json`: path -> [size, blake2b, mtime_ns] of every file a set installed,
minus the files a set deleted, with the sets' role epoch; written after the set's files, before
its state (a re-run of the set writes the same record).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from drsync.errors import DrsyncError
from drsync.fsutil import RO_DIR, RO_FILE, fsync_dir, json_bytes, make_writable_dir, read_json_object
from drsync.nofollow import refuse_symlink_path
from drsync.sets.digest import data_hash
from drsync.sets.manifest import ManifestTable
from drsync.site.layout import MetadataLayout
from drsync.tableformat import get as get_format
from drsync.tableformat.base import FileRole

Expected = tuple[int, str, int]  # size, blake2b, mtime_ns
HEAL_PREFIX = ".drsync-heal-"  # a repair's temp file, beside the file it replaces (hidden from readers)


# ---------------------------------------------------------------- the record of expected hashes


def applied_record(meta: Path, t: ManifestTable, replaced: bool, epoch: int,
                   table_dir: Path | None = None) -> tuple[Path, bytes]:
    """After a table's files of one set are installed: the record of their hashes (the
    manifest's), as (file, bytes) for the caller to write durably with the set's other tables'
    (fsbatch.atomic_write_many: one shared wait for the disk instead of two fsyncs a table).
    `epoch`: the set's role epoch. A record of another epoch (this site was a primary, or the
    standby of another primary, meanwhile) is not trusted: the table starts a new one.
    `table_dir`: a format that rewrites files on install (Iceberg) records what was installed
    there for every file that is not data, not what was shipped."""
    held = {} if replaced else dict(recorded_hashes(meta, t.path, epoch))
    fmt = get_format(t.format)
    for f in t.files:
        if table_dir is not None and fmt.rewrites_on_install and fmt.role(f.kind) is not FileRole.DATA:
            with contextlib.suppress(FileNotFoundError):
                data = (table_dir / f.path).read_bytes()
                held[f.path] = (len(data), data_hash(data), f.mtime_ns)
                continue
        held[f.path] = (f.size, f.blake2b, f.mtime_ns)
    for gone in t.deletions:
        held.pop(gone, None)
    return MetadataLayout(meta).file_hashes(t.path), json_bytes(
        {"epoch": epoch, "files": {k: list(v) for k, v in held.items()}})


def recorded_hashes(meta: Path, table_relpath: str, epoch: int) -> dict[str, Expected]:
    """path -> (size, blake2b, mtime_ns) recorded at role epoch `epoch` ({}: none)."""
    raw = read_json_object(MetadataLayout(meta).file_hashes(table_relpath)) or {}
    if raw.get("epoch") != epoch or not isinstance(raw.get("files"), dict):
        return {}
    return {str(k): (int(v[0]), str(v[1]), int(v[2])) for k, v in raw["files"].items()}


def put_back(table_dir: Path, rel: str, data: bytes, mtime_ns: int) -> None:
    """Replace (or re-create) a replicated file atomically, read-only, with its recorded mtime."""
    if "/" in rel:  # never write through a symlinked directory (a symlink as the file is replaced)
        refuse_symlink_path(table_dir, rel.rsplit("/", 1)[0], table=str(table_dir), what="directory")
    final = table_dir / rel
    parent = final.parent
    if not parent.is_dir():
        raise DrsyncError(f"cannot put back {final}: its directory is gone")
    make_writable_dir(parent)
    for stale in parent.glob(f"{HEAL_PREFIX}{final.name}.*"):  # left by a killed repair
        stale.unlink()
    tmp = parent / f"{HEAL_PREFIX}{final.name}.{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.chmod(tmp, RO_FILE)
        os.replace(tmp, final)
        fsync_dir(parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.chmod(parent, RO_DIR)
