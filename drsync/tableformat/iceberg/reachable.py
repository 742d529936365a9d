"""The files a metadata JSON reaches: manifest lists, manifests, data (and delete) files.

Only what committed metadata reaches is shipped, never a directory listing (that would pick
up uncommitted writes and orphans). Entries a manifest marks DELETED are not reached through
it: the file lives on only where an older snapshot's manifest still lists it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drsync.errors import TableFormatError
from drsync.tableformat.iceberg.metadata import relpath

DELETED = 2  # manifest entry status
DATA_CONTENT = 0  # data_file.content: 0 data, 1 position deletes, 2 equality deletes


def read_avro(path: Path, *, table: str) -> list[dict[str, Any]]:
    import fastavro

    try:
        with open(path, "rb") as f:
            return [r for r in fastavro.reader(f) if isinstance(r, dict)]
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, KeyError, TypeError) as e:
        raise TableFormatError(f"table {table}: {path} is not a readable Avro file: {e}") from None


@dataclass
class Reached:
    """What one metadata JSON reaches, as table-relative paths."""

    manifest_lists: set[str] = field(default_factory=set)
    manifests: dict[str, int] = field(default_factory=dict)  # rel -> manifest content (0/1)
    files: dict[str, tuple[int, int]] = field(default_factory=dict)  # rel -> (size, content)
    stats: dict[str, int] = field(default_factory=dict)  # statistics files -> size
    missing: list[str] = field(default_factory=list)  # reached but gone on disk


def reach(table_dir: Path, meta: dict[str, Any], name: str,
          cache: dict[str, list[tuple[str, int, int]]] | None = None) -> Reached:
    """Everything `meta` reaches; `cache` (manifest rel -> its live entries) saves re-reading
    immutable manifests across rounds of one process."""
    loc = meta["location"]
    out = Reached()
    cache = cache if cache is not None else {}
    for snap in meta.get("snapshots") or []:
        ml = snap.get("manifest-list")
        if not isinstance(ml, str):
            raise TableFormatError(f"table {name}: snapshot {snap.get('snapshot-id')} has no manifest "
                                   "list (Iceberg v1 inline manifests are not supported)")
        ml_rel = relpath(ml, loc, table=name, where=f"snapshot {snap.get('snapshot-id')} manifest-list")
        if ml_rel in out.manifest_lists:
            continue
        out.manifest_lists.add(ml_rel)
        try:
            entries = read_avro(table_dir / ml_rel, table=name)
        except FileNotFoundError:
            out.missing.append(ml_rel)
            continue
        for e in entries:
            m_rel = relpath(str(e["manifest_path"]), loc, table=name, where=f"manifest list {ml_rel}")
            if m_rel in out.manifests:
                continue
            out.manifests[m_rel] = int(e.get("content") or 0)
            if m_rel not in cache:
                try:
                    cache[m_rel] = _live_entries(table_dir, m_rel, loc, name)
                except FileNotFoundError:
                    out.missing.append(m_rel)
                    continue
            for rel, size, content in cache[m_rel]:
                out.files[rel] = (size, content)
    for key in ("statistics", "partition-statistics"):
        for st in meta.get(key) or []:
            rel = relpath(str(st.get("statistics-path")), loc, table=name, where=key)
            out.stats[rel] = int(st.get("file-size-in-bytes") or 0)
    return out


def _live_entries(table_dir: Path, m_rel: str, loc: str, name: str) -> list[tuple[str, int, int]]:
    live = []
    for e in read_avro(table_dir / m_rel, table=name):
        if int(e.get("status", 0)) == DELETED:
            continue
        df = e["data_file"]
        rel = relpath(str(df["file_path"]), loc, table=name, where=f"manifest {m_rel}")
        live.append((rel, int(df["file_size_in_bytes"]), int(df.get("content") or 0)))
    return live
