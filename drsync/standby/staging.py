"""Where a set's files wait between VERIFY and APPLY: `<standby-warehouse>/_drsync/staging/<key>/`.

Flat: the set's n-th file is `<key>/<n>`. One directory is made and removed per set, instead of
one per database, schema, table, log and partition directory the set touches (10 tables in 10
databases: 41 mkdir and 41 rmdir a round, each a journal update, measured at 0.5-5 ms apiece on
this busy disk: up to 0.2 s of a 0.4 s restore). The name carries nothing: which table and path
a staged file belongs to comes from the manifest (loaded and checked before anything is
staged), so nothing the primary sends names a path here. A table whose format rewrites its
files on install (Iceberg, which reads its staged metadata by path) keeps the tree
`<key>/<table path>/<file path>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from drsync.fsbatch import fsync_paths
from drsync.fsutil import make_private_dirs, sync_filesystem
from drsync.sets.manifest import Manifest, ManifestTable
from drsync.tableformat import get as get_format

FSYNC_EACH_MAX = 256  # staged files fsynced one by one (at once) up to this many; above: syncfs


@dataclass(frozen=True)
class Staging:
    root: Path  # staging/<key>
    flat: Mapping[tuple[str, str], Path] = field(default_factory=dict)  # (table name, file) -> staged

    @classmethod
    def plan(cls, root: Path, m: Manifest) -> Staging:
        flat: dict[tuple[str, str], Path] = {}
        for t in m.tables:
            if get_format(t.format).rewrites_on_install:
                continue
            for f in t.files:
                flat[(t.name, f.path)] = root / str(len(flat))
        return cls(root, flat)

    def table_root(self, t: ManifestTable) -> Path:
        """The tree a format that rewrites on install finds its staged files in."""
        return self.root / t.path

    def file(self, t: ManifestTable, rel: str) -> Path:
        return self.flat.get((t.name, rel)) or self.root / t.path / rel  # (t.path parses the name)

    def make_dirs(self, m: Manifest) -> None:
        """The directories the set's files are staged in (no fsync: staging is rebuilt by any
        re-run, and flushed once when complete)."""
        make_private_dirs(self.root)
        for parent in {self.file(t, f.path).parent for t in m.tables for f in t.files}:
            make_private_dirs(parent)

    def flush(self, m: Manifest) -> None:
        """Make every staged file's content durable before any is installed (a commit must
        never survive a power cut without the data it names). A small set fsyncs its files,
        all at once (fsbatch: one shared journal wait); a large one flushes the filesystem
        once (syncfs), cheaper than thousands of fsyncs but paying for whatever else is dirty
        on that filesystem, which a round of a few files should not. Their names need no
        sync: they are renamed into tables, whose directories apply fsyncs."""
        files = [self.file(t, f.path) for t in m.tables for f in t.files]
        if len(files) <= FSYNC_EACH_MAX:
            fsync_paths(files)
        else:
            sync_filesystem(self.root)


def staging_of(staging: Path | Staging) -> Staging:
    """A bare path is a tree staged by table path (as before flat staging; tests build those)."""
    return staging if isinstance(staging, Staging) else Staging(staging)
