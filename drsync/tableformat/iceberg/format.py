"""`IcebergFormat`: Apache Iceberg as a `TableFormat` (the protocol: drsync/tableformat/base.py).

The commit point is the pointer, `metadata/version-hint.text`, installed last; every path in
Iceberg metadata is absolute, so the standby rewrites manifests, manifest lists and the
metadata JSON to its own location before installing them (rewrite.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drsync.errors import TableFormatError
from drsync.tableformat.base import (
    FileRef,
    FileRole,
    ForkedTable,
    SetAsidePlan,
    TableChange,
    TableFormat,
    TableInventory,
)
from drsync.tableformat.iceberg import catalog, collect, fork, metadata, reachable, reader, rewrite, setaside
from drsync.tableformat.iceberg.metadata import HINT, META_DIR, MetadataLog

KINDS = ("data", "delete", "stats", "manifest", "manifest_list", "metadata", "hint")
# delete files are not DATA: the standby rewrites the paths inside position deletes and
# deletion vectors, so (like manifests) what is installed is not byte for byte what was shipped
# and the standby's record of hashes is taken from the installed file (standby/filehashes.py)
_ROLES = {"data": FileRole.DATA, "delete": FileRole.LOG, "stats": FileRole.DATA, "hint": FileRole.POINTER}


class IcebergFormat(TableFormat):
    name = "iceberg"
    title = "Iceberg"
    log_dir = META_DIR
    kinds: tuple[str, ...] = KINDS
    rewrites_on_install = True

    def configure(self, settings: Any) -> None:
        catalog.CONFIG.primary = settings.primary_iceberg_catalog
        catalog.CONFIG.standby = settings.standby_iceberg_catalog
        catalog.CONFIG.name = settings.iceberg_catalog_name

    def is_table(self, table_dir: Path) -> bool:
        if (table_dir / HINT).is_file():
            return True
        return catalog.CONFIG.primary is not None and (table_dir / META_DIR).is_dir() \
            and catalog.primary_pointer(table_dir) is not None

    def after_install(self, table_dir: Path, name: str, ident: list[str] | None = None) -> None:
        """The pointer is in place: switch the standby catalog's row too (if configured)."""
        if catalog.CONFIG.standby is not None and (table_dir / HINT).is_file():
            catalog.register(table_dir, name, metadata.read_pointer(table_dir), ident)

    def read_log(self, table_dir: Path) -> MetadataLog:
        name = table_dir.name
        return metadata.read_metadata_log(table_dir, metadata.read_pointer(table_dir), name)

    def log_signature(self, table_dir: Path) -> str | None:
        return metadata.signature(table_dir)

    def probe(self, table_dir: str) -> tuple[bool, str | None]:
        path = Path(table_dir)
        return (True, metadata.signature(path)) if self.is_table(path) else (False, None)

    def barrier_version(self, table_dir: Path, log: Any, barrier_ms: int, floor: int) -> int | None:
        return collect.barrier_version(table_dir, log, barrier_ms, floor)

    def commits(self, table_dir: Path) -> dict[int, str]:
        return {}  # the commit point is the pointer (a POINTER, replaced), not a file per version

    def snapshot_files(self, table_dir: Path, name: str, version: int) -> dict[str, FileRef]:
        log = metadata.read_metadata_log(table_dir, metadata.read_pointer(table_dir), name)
        if version not in log.versions:
            raise TableFormatError(f"table {name}: no metadata for version {version}")
        _, meta = metadata.read_version(table_dir, log.versions[version][0], name)
        reached = reachable.reach(table_dir, meta, name)
        return {p: FileRef(p, size, "data" if content == 0 else "delete")
                for p, (size, content) in reached.files.items()}

    def collect(self, table_dir: Path, name: str, log: Any, barrier_ms: int,
                prev: TableInventory | None) -> TableChange | None:
        return collect.collect_changes(table_dir, name, log, barrier_ms, prev)

    def role(self, kind: str) -> FileRole:
        return _ROLES.get(kind, FileRole.LOG)

    def check_file(self, kind: str, path: str, version: int | None) -> bool:
        in_meta = path.startswith(f"{META_DIR}/")
        if kind == "hint":
            return path == HINT
        if kind == "metadata":
            return in_meta and "/" not in path[len(META_DIR) + 1:] and \
                metadata.metadata_version(path) == version and version is not None
        if kind in ("manifest", "manifest_list"):
            return in_meta and path.endswith(".avro")
        return not in_meta or kind == "stats"

    def install_order(self, files: list[Any], full_copy: bool) -> list[Any]:
        return sorted(files, key=lambda f: (collect.RANKS.get(f.kind, 0), f.path))

    def local_change(self, table_dir: Path, known_version: int | None, files: list[Any]) -> str | None:
        """The pointer must name the metadata drsync installed last, or this set's (a killed
        run of it switched the pointer already): anything else was committed locally."""
        try:
            current = metadata.read_pointer(table_dir)
        except TableFormatError as e:
            return e.message
        ours = {f.path for f in files if f.kind == "metadata"}
        v = metadata.metadata_version(current)
        if current in ours or (known_version is not None and v == known_version):
            return None
        return f"its pointer names {current}, which drsync did not install (a local commit?)"

    def rewrite_on_install(self, staged_table: Path, files: list[Any], final_dir: Path,
                           table_dir: Path, name: str) -> None:
        rewrite.rewrite_table(staged_table, files, final_dir, table_dir, table=name)

    def open_row_reader(self, threads: int | None = None) -> Any:
        return reader.connect(threads)

    def row_checksum(self, con: Any, table_dir: Path, version: int | None) -> tuple[int, int]:
        return reader.table_checksum(con, table_dir, version)

    def sample_rows(self, con: Any, table_dir: Path, version: int, limit: int) -> int:
        return reader.sample_rows(con, table_dir, version, limit)

    def fork(self, src: Path, dest: Path, name: str, version: int, key: str, *, copy: bool,
             final: Path | None = None) -> ForkedTable:
        return fork.fork_table(src, dest, name, version, key, copy=copy, final=final)

    def set_aside_plan(self, table_dir: Path, name: str, version: int) -> SetAsidePlan:
        return setaside.set_aside_plan(table_dir, name, version)

    def held_log_files(self, table_dir: Path) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in (table_dir / META_DIR).iterdir():
            if p.is_file() and p.name != "version-hint.text" and not p.name.startswith("."):
                out[f"{META_DIR}/{p.name}"] = p.stat().st_size
        return out
