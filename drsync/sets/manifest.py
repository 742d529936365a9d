"""The backup-set manifest: what a set carries, and the chain rules between sets.

A manifest is the only thing the standby trusts about a set, so loading one validates it
completely: known `format_version` major, every table path three safe components, every file
path confined to its table, every file in a bundle the manifest lists.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from drsync.errors import DrsyncError, ManifestError, TableFormatError, UnsafePathError
from drsync.sets.digest import algorithm_of
from drsync.site.confine import safe_relpath
from drsync.site.layout import KEY_FORMAT
from drsync.site.names import PLAIN_TABLE_NAME, format_name, parse_name, relpath_of
from drsync.tableformat import get as get_format
from drsync.tableformat.base import event_text

# 1.1: desync, renames, publications, ManifestTable.replace (all defaulted: 1.0 still loads)
# 1.2: ManifestTable.format (defaulted: a 1.1 table is Delta, the only format then)
# 1.3: versions_base, versions_dropped; `versions` holds only what moved against the base set
#      (sets/barriers.py; defaulted: a 1.2 manifest carries the whole map)
# 1.4: digests name their algorithm (digest.py): "blake3:<hex>"; a bare hex digest is BLAKE2b,
#      as 1.0-1.3 wrote them (they still restore). The fields keep their name `blake2b`.
FORMAT_VERSION = "1.4"
FORMAT_BEFORE_1_2 = "delta"


class ManifestFile(BaseModel):
    path: str
    kind: str  # the table format's file kind, checked against the path by the format
    size: int = Field(ge=0)
    mtime_ns: int
    version: int | None = None
    blake2b: str
    bundle: str


class ManifestTable(BaseModel):
    name: str  # db.schema.table
    format: str = FORMAT_BEFORE_1_2  # the TableFormat's name (drsync.tableformat.get)
    table_id: str | None
    mode: Literal["full", "incremental", "resync"]
    from_version: int | None
    to_version: int
    files: list[ManifestFile] = []
    deletions: list[str] = []
    ddl: list[dict[str, Any]] = []
    warnings: list[str] = []
    expose_at_once: bool = False  # swap the whole new log in at once (see changes.TableChange)
    # A complete new copy (re-created on the primary, or reseed): the standby builds it aside
    # and swaps the whole table directory in, so old and new files are never mixed.
    replace: bool = False
    # A table of a catalog (Iceberg SQL catalogs): its identifier there, namespace parts then
    # the name, so the standby's catalog row has the same (checked by the format on install).
    # Defaulted, no format bump: an older drsync ignores it and names the row as before.
    catalog: list[str] | None = None

    @property
    def path(self) -> str:
        return relpath_of(self.name)


class FailedObject(BaseModel):
    name: str
    code: str
    error: str


class DesyncEntry(BaseModel):
    """A table no longer replicated (cancelled, unpublished, dropped on the primary)."""

    name: str
    reason: str


class Rename(BaseModel):
    """A table moved on the primary (same table id): moved on the standby, not copied."""

    from_name: str
    to_name: str


class BundleInfo(BaseModel):
    name: str
    size: int
    blake2b: str
    compression: Literal["zstd", "none", "raw"]  # 1.4: raw = one data file as it is (rawfile.py)
    files: int
    raw_bytes: int


class Manifest(BaseModel):
    format_version: str = FORMAT_VERSION
    key: str
    prior_key: str | None
    primary_cluster_id: str | None = None
    standby_cluster_id: str | None = None
    role_epoch: int = 0
    barrier_utc: str
    barrier_ms: int
    created_utc: str
    status: Literal["complete", "partial"] = "complete"
    tables: list[ManifestTable] = []
    # The barrier map: every protected table and the version it has at this barrier. With
    # `versions_base` (always the prior set) only what differs from that set's map: new or
    # moved versions in `versions`, tables no longer in the map in `versions_dropped`; without
    # it the whole map. sets/barriers.py rebuilds the whole map; the standby publishes it.
    versions: dict[str, int] = {}
    versions_base: str | None = None
    versions_dropped: list[str] = []
    failed_objects: list[FailedObject] = []
    bundles: list[BundleInfo] = []
    desync: list[DesyncEntry] = []
    renames: list[Rename] = []  # applied before the set's tables
    # The publications the primary holds (publications.json), so the standby has them after a
    # role change; None from a primary that never configured any (or a 1.0 manifest).
    publications: dict[str, Any] | None = None

    @property
    def data_bytes(self) -> int:
        return sum(f.size for t in self.tables for f in t.files)

    def to_bytes(self) -> bytes:
        # Compact: it travels every round (pretty-print with `python -m json.tool`).
        return json.dumps(self.model_dump(), separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def history_detail(m: Manifest) -> str:
    """The csv history's detail column: DDL events, moves, desynchronised and failed tables."""
    parts = [event_text(t.name, e) for t in m.tables for e in t.ddl]
    parts += [f"{t.name}: replaced" for t in m.tables if t.replace]
    parts += [f"moved {r.from_name} -> {r.to_name}" for r in m.renames]
    parts += [f"desynchronised {d.name} ({d.reason})" for d in m.desync]
    parts += [f"failed {f.name}" for f in m.failed_objects]
    return "; ".join(parts)


def apply_order(table: ManifestTable) -> list[ManifestFile]:
    """The table's files in the order its format installs them (every exposed version readable)."""
    return get_format(table.format).install_order(table.files, table.mode != "incremental")


def validate_table_name(name: str) -> str:
    """A table name as drsync writes it (names.py): db.schema.table or db.table, canonical."""
    if PLAIN_TABLE_NAME.fullmatch(name):  # the usual case, valid as it is (names.py)
        return name
    try:
        parts = parse_name(name, "part", counts=(2, 3))
    except DrsyncError as e:
        raise UnsafePathError(f"table name {name!r}: {e.message}") from None
    if format_name(parts) != name:
        raise UnsafePathError(f"table name {name!r} is not in canonical form ({format_name(parts)!r})")
    return name


def load_manifest(path: Path) -> Manifest:
    """Read and fully validate a manifest file; ManifestError names the file on any problem."""
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ManifestError(f"manifest {path} does not exist") from None
    except ValueError as e:
        raise ManifestError(f"manifest {path} is not valid JSON (truncated?): {e}") from None
    except RecursionError:
        raise ManifestError(f"manifest {path} is not valid JSON (nested too deeply)") from None
    return parse_manifest(raw, where=str(path))


def parse_manifest(raw: Any, *, where: str) -> Manifest:
    if not isinstance(raw, dict):
        raise ManifestError(f"manifest {where} is not a JSON object")
    major = str(raw.get("format_version", "")).split(".")[0]
    if major != FORMAT_VERSION.split(".")[0]:
        raise ManifestError(
            f"manifest {where} has format_version {raw.get('format_version')!r}; this drsync "
            f"reads {FORMAT_VERSION.split('.')[0]}.x",
            hint="install the same drsync version on both sites",
        )
    try:
        m = Manifest.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ManifestError(f"manifest {where}: field {loc}: {first['msg']}") from None
    if m.versions_base is not None and m.versions_base != m.prior_key:
        raise ManifestError(f"manifest {where}: versions_base {m.versions_base!r} is not the set it "
                            f"builds on ({m.prior_key!r})")
    bundles = {b.name for b in m.bundles}
    for b in bundles:
        safe_relpath(b, table="(bundle)", where=f"manifest {where}")
    _check_digests(m, where)
    _check_raw(m, where)
    for i, t in enumerate(m.tables):
        try:
            kinds = get_format(t.format).kinds
        except TableFormatError as e:
            raise ManifestError(f"manifest {where}: table {t.name}: {e.message}", hint=e.hint) from None
        for j, f in enumerate(t.files):
            if f.kind not in kinds:
                raise ManifestError(f"manifest {where}: field tables.{i}.files.{j}.kind: "
                                    f"{f.kind!r} is no file kind of format {t.format!r}")
    try:
        for t in m.tables:
            validate_table_name(t.name)
            for f in t.files:
                safe_relpath(f.path, table=t.name, where=f"manifest {where}")
                _check_kind(f, t, where)
                if f.bundle not in bundles:
                    raise ManifestError(
                        f"manifest {where}: {t.name}/{f.path} is in unknown bundle {f.bundle!r}")
            for d in t.deletions:
                safe_relpath(d, table=t.name, where=f"manifest {where} (deletion)")
        for name in [*m.versions, *m.versions_dropped]:
            validate_table_name(name)
        for gone in m.desync:
            validate_table_name(gone.name)
        for r in m.renames:
            validate_table_name(r.from_name)
            validate_table_name(r.to_name)
    except UnsafePathError as e:
        raise UnsafePathError(f"manifest {where} refused: {e.message}") from None
    return m


def _check_digests(m: Manifest, where: str) -> None:
    """Every digest of a known algorithm (a file is checked with the one its digest names)."""
    fields = [(f"bundles.{i}.blake2b", b.blake2b) for i, b in enumerate(m.bundles)]
    fields += [(f"tables.{i}.files.{j}.blake2b", f.blake2b)
               for i, t in enumerate(m.tables) for j, f in enumerate(t.files)]
    for loc, digest in fields:
        try:
            algorithm_of(digest)
        except ValueError as e:
            raise ManifestError(f"manifest {where}: field {loc}: {e}",
                                hint="install the same drsync version on both sites") from None


def _check_raw(m: Manifest, where: str) -> None:
    """A raw bundle is exactly one file, with that file's size and digest."""
    raw = {b.name: b for b in m.bundles if b.compression == "raw"}
    held: dict[str, int] = {}
    for t in m.tables:
        for f in t.files:
            b = raw.get(f.bundle)
            if b is None:
                continue
            held[b.name] = held.get(b.name, 0) + 1
            if (b.size, b.blake2b, b.files, b.raw_bytes) != (f.size, f.blake2b, 1, f.size):
                raise ManifestError(f"manifest {where}: raw bundle {b.name} does not match the "
                                    f"size and digest of {t.name}/{f.path}")
    for name in raw:
        if held.get(name) != 1:
            raise ManifestError(f"manifest {where}: raw bundle {name} must hold exactly one file")


def _check_kind(f: ManifestFile, t: ManifestTable, where: str) -> None:
    """A file's kind decides how it is installed (commits: create-if-absent, never replaced),
    so a kind that does not match its path is refused rather than trusted."""
    if not get_format(t.format).check_file(f.kind, f.path, f.version):
        raise UnsafePathError(f"table {t.name}: file {f.path!r} cannot be of kind {f.kind!r} "
                              f"(version {f.version})")


def next_key(barrier: datetime, previous_key: str | None) -> str:
    """Key from the barrier's UTC time; never equal to or before the previous key."""
    key = barrier.astimezone(UTC).strftime(KEY_FORMAT)
    if previous_key is not None and key <= previous_key:
        prev = datetime.strptime(previous_key, KEY_FORMAT).replace(tzinfo=UTC)
        key = (prev + timedelta(seconds=1)).strftime(KEY_FORMAT)
    return key


def key_time(key: str) -> datetime:
    return datetime.strptime(key, KEY_FORMAT).replace(tzinfo=UTC)
