"""Iceberg metadata: the pointer, the metadata JSON chain, and table-location paths.

A directory table has `metadata/version-hint.text` naming its current metadata file (`3` for
`v3.metadata.json`, or the file's stem, `00003-<uuid>`, as DuckDB and pyiceberg read it). A
drsync *version* of an Iceberg table is the number a metadata file's name starts with; the
current metadata's `metadata-log` gives every earlier one with its commit time.

Iceberg paths are absolute: every one drsync ships must lie under the metadata's `location`
(the table's own directory); anything else is refused by name (`relpath`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drsync.errors import TableFormatError, UnsafePathError
from drsync.site.confine import safe_relpath
from drsync.tableformat.iceberg.locations import HINT, META_DIR, SCHEMES, local_path

_META_NAME = re.compile(r"^v?(\d+)[-.].*metadata\.json$")


def metadata_version(name: str) -> int | None:
    """The version a metadata file's name carries (`v3.metadata.json`, `00003-<uuid>.metadata.json`)."""
    m = _META_NAME.match(name.rsplit("/", 1)[-1])
    return int(m[1]) if m else None


def hint_text(metadata_rel: str) -> str:
    """What version-hint.text holds for this metadata file (as readers resolve it back)."""
    stem = metadata_rel.rsplit("/", 1)[-1].removesuffix(".metadata.json")
    return stem[1:] if re.fullmatch(r"v\d+", stem) else stem


def hint_target(text: str) -> str:
    """The table-relative metadata file a version-hint.text names."""
    text = text.strip()
    if "/" in text or not text or text.startswith("."):
        raise TableFormatError(f"version-hint.text holds {text!r}, not a metadata file name")
    if text.endswith(".metadata.json"):
        return f"{META_DIR}/{text}"
    if text.isdigit():
        return f"{META_DIR}/v{int(text)}.metadata.json"
    return f"{META_DIR}/{text}.metadata.json"


def relpath(uri: str, location: str, *, table: str, where: str) -> str:
    """`uri` relative to the table `location`; UnsafePathError when it lies outside."""
    base, path = local_path(location), local_path(uri)
    if base is None:
        raise UnsafePathError(f"table {table}: {where}: location {location!r} is not a local path; "
                              "drsync replicates tables on a local file system only")
    base = base.rstrip("/")
    if path is None or not path.startswith(base + "/"):
        raise UnsafePathError(
            f"table {table}: {where} points outside the table's location {location!r}: {uri!r}",
            hint="only tables whose files all lie under their own location can be replicated")
    return safe_relpath(path[len(base) + 1:], table=table, where=where)


def rebase(uri: str, old: str, new_dir: Path, *, table: str, where: str) -> str:
    """`uri` under `old` moved under `new_dir`, keeping its own scheme style."""
    rel = relpath(uri, old, table=table, where=where)
    scheme = next((s for s in SCHEMES if uri.startswith(s)), "")
    if scheme == "file:" and uri.startswith("file://"):
        scheme = "file://"
    return f"{scheme}{new_dir}/{rel}"


def new_location(location: str, new_dir: Path) -> str:
    scheme = next((s for s in SCHEMES if location.startswith(s)), "")
    return f"{scheme}{new_dir}"


def parse_metadata(data: bytes, *, table: str, where: str) -> dict[str, Any]:
    try:
        meta = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise TableFormatError(f"table {table}: metadata {where} is not valid JSON: {e}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("location"), str):
        raise TableFormatError(f"table {table}: metadata {where} has no table location")
    if meta.get("format-version") not in (1, 2, 3):
        raise TableFormatError(f"table {table}: metadata {where}: Iceberg format-version "
                               f"{meta.get('format-version')!r} is not supported (1 to 3 are)")
    return meta


@dataclass
class MetadataLog:
    """One read of an Iceberg table's pointer and current metadata (a `TableLog`)."""

    current: str  # table-relative path of the current metadata file
    metadata: dict[str, Any]
    raw: bytes
    versions: dict[int, tuple[str, int]] = field(default_factory=dict)  # v -> (rel path, ms)
    format_name: str = "iceberg"

    @property
    def latest_version(self) -> int | None:
        return max(self.versions) if self.versions else None


def read_pointer(table_dir: Path) -> str:
    """The table-relative metadata file version-hint.text names (or the primary's catalog)."""
    if not (table_dir / HINT).exists():
        from drsync.tableformat.iceberg.catalog import primary_pointer

        rel = primary_pointer(table_dir)
        if rel is not None:
            return rel
    try:
        text = (table_dir / HINT).read_text(errors="replace")
    except OSError as e:
        raise TableFormatError(f"{table_dir}: cannot read {HINT}: {e.strerror}") from None
    try:
        target = hint_target(text)
    except TableFormatError as e:
        raise TableFormatError(f"{table_dir}: {e.message}") from None
    row = _catalog_row(table_dir)
    if row is not None and (metadata_version(row) or -1) > (metadata_version(target) or -1):
        return row
    return target


def _catalog_row(table_dir: Path) -> str | None:
    """The primary catalog's metadata for a table that also has a version-hint.text: a
    replicated copy promoted to primary (failover, switchover) keeps the hint drsync wrote,
    while writers commit through the catalog row; the newer of the two is the table's state.
    An unreachable catalog leaves the hint in charge (a standby host may not reach it), and
    so does a row naming a file that is not there (a stale row left by a role change)."""
    from drsync.tableformat.iceberg.catalog import CONFIG, primary_pointer

    if CONFIG.primary is None:
        return None
    try:
        row = primary_pointer(table_dir)
    except TableFormatError:
        return None
    return row if row is not None and (table_dir / row).is_file() else None


def read_metadata_log(table_dir: Path, current: str, name: str) -> MetadataLog:
    """The metadata chain as the metadata file `current` records it."""
    try:
        raw = (table_dir / current).read_bytes()
    except OSError as e:
        raise TableFormatError(f"table {name}: cannot read its metadata {table_dir / current}: "
                               f"{e.strerror}") from None
    meta = parse_metadata(raw, table=name, where=str(table_dir / current))
    v = metadata_version(current)
    if v is None:
        raise TableFormatError(f"table {name}: metadata file {current} carries no version number")
    out = MetadataLog(current, meta, raw)
    for entry in meta.get("metadata-log") or []:
        try:
            rel = relpath(str(entry["metadata-file"]), meta["location"], table=name, where="metadata-log")
            ev = metadata_version(rel)
            if ev is not None and ev < v:
                out.versions[ev] = (rel, int(entry["timestamp-ms"]))
        except (KeyError, TypeError, ValueError, UnsafePathError):
            continue  # history only: an odd entry is never a version to ship
    out.versions[v] = (current, int(meta.get("last-updated-ms") or 0))
    return out


def read_version(table_dir: Path, rel: str, name: str) -> tuple[bytes, dict[str, Any]]:
    raw = (table_dir / rel).read_bytes()
    return raw, parse_metadata(raw, table=name, where=str(table_dir / rel))


def signature(table_dir: Path) -> str | None:
    """A cheap identity of the committed metadata: the pointer's content and stat (or the
    catalog row's metadata_location)."""
    if not (table_dir / HINT).exists():
        from drsync.tableformat.iceberg.catalog import primary_pointer

        rel = primary_pointer(table_dir)
        return f"catalog:{rel}" if rel is not None else None
    try:
        st = os.stat(table_dir / HINT)
        hint = (table_dir / HINT).read_text(errors="replace").strip()
    except OSError:
        return None
    return f"{hint}:{st.st_size}:{st.st_mtime_ns}:{_catalog_row(table_dir)}"


def version_metadata(table_dir: Path, name: str, version: int) -> str:
    """The table-relative metadata JSON of `version` still in `table_dir` (TableFormatError if
    none is left: the standby keeps only what its newest sets need)."""
    try:
        log = read_metadata_log(table_dir, read_pointer(table_dir), name)
        rel = log.versions.get(version, ("", 0))[0]
        if rel and (table_dir / rel).is_file():
            return rel
    except TableFormatError:
        pass  # the pointer names a missing file: look for the version by name
    found = sorted(f"{META_DIR}/{p.name}" for p in (table_dir / META_DIR).iterdir()
                   if metadata_version(p.name) == version and p.is_file())
    if len(found) != 1:
        what = "no metadata file" if not found else f"{len(found)} metadata files ({', '.join(found)})"
        raise TableFormatError(f"table {name}: {what} for version {version} in {table_dir}")
    return found[0]
