"""What replication needs from a table format: the `TableFormat` protocol and its data types.

Every caller outside `drsync/tableformat/<format>/` works through this protocol and the kinds
of file a format names (`FileRole` says what a kind means for installing and inventory), so
adding a format is one new package. The module docstring of `drsync.tableformat` tells how
Delta and Iceberg fill each place in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


class FileRole(StrEnum):
    """What a file kind means to the generic code (inventory, install, storage follows)."""

    # table content: installed before any log file; inventoried; removed after the primary did
    DATA = "data"
    COMMIT = "commit"  # one per version: created only if absent, never overwritten
    LOG = "log"  # any other immutable log/metadata file (checkpoints, manifests, metadata JSON)
    # a small mutable file replaced in place, installed last (a hint, or the commit point)
    POINTER = "pointer"


@dataclass
class FileRef:
    """A file a version needs, relative to the table root; `kind` is the format's word."""

    path: str
    size: int | None
    kind: str


@dataclass
class FileToShip:
    path: str  # relative to the table root
    kind: str  # the format's file kind (FileRole via TableFormat.role)
    size: int
    mtime_ns: int
    version: int | None = None  # for log files
    content: bytes | None = None  # held in memory for files that may change (or were parsed)


@dataclass
class TableInventory:
    """What the standby holds (or will, once shipped sets are applied) of one table."""

    version: int = -1
    table_id: str | None = None
    log_floor: int = 0  # oldest version whose log the standby holds (a full copy's start)
    commit_sig: list[int] = field(default_factory=list)  # [size, mtime_ns] of commit `version`
    files: dict[str, int] = field(default_factory=dict)  # data file path -> size
    removed: list[str] = field(default_factory=list)  # removed by a shipped commit, still on disk
    log_files: dict[str, int] = field(default_factory=dict)  # shipped log file -> size
    last_checkpoint_sig: list[int] = field(default_factory=list)  # [size, mtime_ns] of the pointer shipped
    # The table's schema, properties and protocol as of `version`, to describe DDL events
    ddl_state: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TableInventory:
        return cls(**obj)


@dataclass
class TableChange:
    name: str  # db.schema.table
    table_id: str | None
    mode: str  # full | incremental | resync
    from_version: int | None
    to_version: int
    files: list[FileToShip]  # in install order
    deletions: list[str]
    ddl: list[dict[str, Any]]
    warnings: list[str]
    inventory: TableInventory  # the inventory after this set is applied
    # Some version in the range cannot be read even on the primary (its files were vacuumed
    # before this collect): the standby must make the new commits visible all at once, or
    # that version would be the table's latest for a moment (or until a re-run, after a kill).
    expose_at_once: bool = False
    replace: bool = False  # a complete copy that replaces the standby's table as a whole
    # Files version `to_version` needs that were already gone at collect (VACUUM running now,
    # or a table damaged on the primary): the primary cuts the set again in the first case.
    missing_needed: list[str] = field(default_factory=list)
    format: str = ""  # the TableFormat's name (recorded per table in the manifest)
    # a table of a catalog: its identifier there (namespace parts, then the name), so that the
    # standby's catalog names it the same (Iceberg SQL catalogs); None for other tables
    catalog: list[str] | None = None


@dataclass
class SetAsidePlan:
    """What lies above a version in a table directory (roles: back a table up to a version)."""

    log_files: list[str]  # in move order: the newest first, so the log stays contiguous
    commits: list[int]  # versions above
    data_files: set[str]  # data files only those versions add
    rows: int  # rows those versions added (from the format's statistics; 0 if unknown)
    # Pointer files (table-relative -> new content) written before anything moves, when the
    # commit point is a pointer (Iceberg): the table is at `version` from then on.
    pointers: dict[str, bytes] = field(default_factory=dict)


@dataclass
class ForkedTable:
    name: str
    version: int
    log_bytes: int = 0  # log files copied
    linked_bytes: int = 0  # data/DV/sidecar files hard-linked (no bytes written)
    copied_bytes: int = 0  # data files copied (copy=True)
    files: int = 0


class InstalledFile(Protocol):
    """A manifest file as the format sees it at install time."""

    path: str
    kind: str
    version: int | None


@runtime_checkable
class TableLog(Protocol):
    """One read of a table's log (a directory listing, a metadata chain): opaque to callers."""

    format_name: str

    @property
    def latest_version(self) -> int | None: ...


class TableFormat(Protocol):
    """One table format: how to find its tables, read versions, collect and install them.

    A format subclasses this protocol explicitly to take the hooks' defaults (those with a
    `return` in their body: configure, local_change, rewrite_on_install, after_install); mypy
    then checks every method it defines against the signatures here.

    Faithfulness: every method that reads a table raises `TableFormatError` (or
    `UnsafePathError`) naming the table when it cannot be copied as it is (paths leaving the
    table, absolute paths, an unparseable log); the round leaves that table out.
    """

    name: str  # recorded per table in manifests ("format")
    title: str  # for messages: "not a Delta table"
    # Table-relative directory holding the log/metadata: a first copy (or a set flagged
    # expose_at_once) builds it aside and makes it visible in one rename/exchange.
    log_dir: str
    kinds: tuple[str, ...]  # every file kind it ships (manifest validation)
    # Files a copy must rewrite at install (absolute paths inside); False: installed as shipped.
    rewrites_on_install: bool

    def configure(self, settings: Any) -> None:
        """Take the format's settings (e.g. Iceberg's catalogs); called by load_settings.
        Default: the format has none."""
        return None

    # --- discovery and identity ----------------------------------------------------------
    def is_table(self, table_dir: Path) -> bool:
        """Is this directory a table of this format (cheap: a stat or two)."""

    def read_log(self, table_dir: Path) -> TableLog:
        """One read of the log; TableFormatError when the directory is not such a table."""

    def log_signature(self, table_dir: Path) -> str | None:
        """A cheap identity of the log as it is now (equal: nothing changed), None if unreadable.

        The contract the round's fast path trusts (primary/round.py): it **must change whenever
        the table's committed state changes** (a commit, a checkpoint or `_last_checkpoint`
        rewritten, a log file cleaned up, the table dropped and re-created under the same
        name). An equal signature skips the table with no other look, so a signature that
        misses a change means that change is never shipped. Delta: the `_delta_log`
        directory's identity and times, its entry names and `_last_checkpoint`'s size and
        mtime; Iceberg: `version-hint.text` / the catalog's metadata_location."""

    def probe(self, table_dir: str) -> tuple[bool, str | None]:
        """(`is_table`, `log_signature` or None when it is not a table or unreadable) in one
        look: the round discovers every table and signs its log in one pass over the warehouse
        (site/warehouse.scan_tables), so this runs for every table every round and takes a
        plain `str` path. Must agree with `is_table` on what a table is."""

    # --- versions and the files they need ---------------------------------------------------
    def barrier_version(self, table_dir: Path, log: TableLog, barrier_ms: int, floor: int) -> int | None:
        """Newest version committed at or before `barrier_ms`, looking only above `floor`."""

    def commits(self, table_dir: Path) -> dict[int, str]:
        """version -> table-relative path of the file that commits it (the standby's own check)."""

    def snapshot_files(self, table_dir: Path, name: str, version: int) -> dict[str, FileRef]:
        """The data files version `version` needs."""

    def collect(self, table_dir: Path, name: str, log: TableLog, barrier_ms: int,
                prev: TableInventory | None) -> TableChange | None:
        """What to ship to bring a standby holding `prev` (None: nothing) to the barrier's
        version: files added, files and log files removed since (storage follows), checkpoint
        and log cleanup, DDL events, the table id; None when nothing changed.
        Raises TableRecreatedError when the table id or the shipped history changed."""

    # --- installing on the standby -------------------------------------------------------
    def role(self, kind: str) -> FileRole:
        """What a file kind means to the generic code."""

    def check_file(self, kind: str, path: str, version: int | None) -> bool:
        """Does this kind fit this path and version (a kind decides how a file is installed)?"""

    def install_order(self, files: list[Any], full_copy: bool) -> list[Any]:
        """`files` (ManifestFile/FileToShip) sorted so each version a reader can see has all
        its files; the commit point of each version comes after everything it needs."""

    def local_change(self, table_dir: Path, known_version: int | None, files: list[Any]) -> str | None:
        """What was changed on the standby behind drsync's back, None if nothing: a table at
        `known_version` (None: not replicated here yet) about to get `files` (a killed run of
        the same set may have installed some of them already). Formats whose commits are files
        leave this to the generic commit check (`commits`): the default finds nothing."""
        return None

    def rewrite_on_install(self, staged_table: Path, files: list[Any], final_dir: Path,
                           table_dir: Path, name: str) -> None:
        """Before one table's `files` staged under `staged_table` are installed: rewrite them
        (each to a new file renamed over the staged one) for the table at `final_dir`, where
        readers find it; `table_dir` is where it is built now (called only if
        `rewrites_on_install`; the primary's location comes from the shipped metadata).
        Default: nothing to rewrite (paths inside are relative to the table)."""
        return None

    def after_install(self, table_dir: Path, name: str, ident: list[str] | None = None) -> None:
        """After a table's files are installed and its pointer is in place (e.g. switch the
        catalog row of `ident`, the identifier the set carries, to the new metadata).
        Default: nothing, each file is its own commit."""
        return None

    # --- reading rows (verify --deep: an independent reader, not drsync's own log code) ----
    def open_row_reader(self, threads: int | None = None) -> Any:
        """A reader (e.g. a DuckDB connection with the format's extension) for row_checksum."""

    def row_checksum(self, reader: Any, table_dir: Path, version: int | None) -> tuple[int, int]:
        """(row count, order-independent checksum of all rows) at `version`."""

    def sample_rows(self, reader: Any, table_dir: Path, version: int, limit: int) -> int:
        """Read up to `limit` rows at `version`, every column decoded (continuous verification's
        bounded read-back); the number read."""

    # --- role changes ----------------------------------------------------------------------
    def set_aside_plan(self, table_dir: Path, name: str, version: int) -> SetAsidePlan:
        """What lies above `version` (moved aside to take the table back to it)."""

    def held_log_files(self, table_dir: Path) -> dict[str, int]:
        """Every immutable log file of the table with its size (a copy holds them all)."""

    # --- drills ----------------------------------------------------------------------------
    def fork(self, src: Path, dest: Path, name: str, version: int, key: str, *, copy: bool,
             final: Path | None = None) -> ForkedTable:
        """A writable table at `dest` equal to `src` at `version`: its own log, data files
        hard-linked (copied with `copy`), never a replicated file changed (roles/drill.py).
        `final`: where the fork is read once built (a drill renames its temp directory into
        place); a format with absolute paths in its metadata writes that location."""


def event_text(table: str, e: dict[str, Any]) -> str:
    """One DDL event in the set history and show-progress."""
    op = f" [{e['operation']}]" if e.get("operation") else ""
    return f"{table}@{e.get('version')}: {e.get('change') or e.get('kind')}{op}"
