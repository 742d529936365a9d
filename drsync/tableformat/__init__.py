"""Table formats behind one protocol, and the one place callers get a format from.

`TableFormat` (base.py) is what replication needs from a format: find its tables
(`is_table`), read the log once per round (`read_log`, `log_signature` for the unchanged
fast path), the newest version at or before a barrier with its commit time
(`barrier_version`), the files a version needs (`snapshot_files`), what to ship between two
versions (`collect`: files added, files and log files removed since, checkpoints and log
cleanup, DDL events, the table id that detects renames and re-creation), how to install
(`role` of each file kind, `check_file`, `install_order`, `rewrite_on_install`, `log_dir`
built aside and exposed at once), and what lies above a version (`set_aside_plan`,
`held_log_files`) for role changes. Faithfulness: a table that cannot be copied as it is
(paths leaving it, absolute paths, an unparseable log) raises TableFormatError by name.

A format is a subpackage of `drsync.tableformat` exposing `FORMAT`; `formats()` finds it (no
registry line to add). Manifests record each table's `format`.

**Delta** (`delta/`): the log is `_delta_log/`; each commit file is its version's commit point
(role COMMIT, created only if absent); checkpoints, sidecars, crc and compactions are LOG;
`_last_checkpoint` is a POINTER (a hint, installed last); data, deletion-vector and CDC files
are DATA. Paths are relative: `rewrites_on_install` is False. The table id is `metaData.id`.

**Iceberg** (issue 19) would fill the same places: `is_table` = `metadata/version-hint.text`
(or a catalog row); `read_log` = the metadata JSON chain; `barrier_version` = the newest
metadata with `last-updated-ms` <= the barrier; `collect` ships the files reachable from that
metadata only (data and delete files DATA; manifests, manifest lists and the metadata JSON
LOG; `version-hint.text` the POINTER, here the commit point) and lists as deletions what
expired snapshots no longer reach; `install_order` = data -> manifests -> manifest lists ->
metadata JSON -> pointer; `rewrites_on_install` is True and `rewrite_on_install` rewrites the
primary's table location to the standby's in metadata JSON, manifest lists (with
`manifest_length`) and manifests; `table_id` is the metadata's `table-uuid`; DDL events are
schema and partition-spec changes. A catalog-backed pointer would need one more hook on the
standby (update the catalog row after the metadata JSON is in place).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from drsync.errors import TableFormatError
from drsync.tableformat.base import FileRole, TableFormat

__all__ = ["FileRole", "TableFormat", "format_of", "formats", "get", "probe", "require_format"]

_FORMATS: list[TableFormat] | None = None


def formats() -> list[TableFormat]:
    """Every format: each subpackage of drsync.tableformat that exposes `FORMAT`, by name."""
    global _FORMATS
    if _FORMATS is None:
        found: list[TableFormat] = []
        for mod in pkgutil.iter_modules(__path__):
            if mod.ispkg:
                fmt = getattr(importlib.import_module(f"{__name__}.{mod.name}"), "FORMAT", None)
                if fmt is not None:
                    found.append(fmt)
        _FORMATS = sorted(found, key=lambda f: f.name)
    return _FORMATS


def get(name: str) -> TableFormat:
    """The format called `name` (as recorded in a manifest)."""
    for fmt in formats():
        if fmt.name == name:
            return fmt
    known = ", ".join(f.name for f in formats())
    raise TableFormatError(f"unknown table format {name!r} (this drsync knows: {known})",
                           hint="install the same drsync version on both sites")


def format_of(table_dir: Path) -> TableFormat | None:
    """The format of the table in `table_dir`, None when it is no table of a known format."""
    for fmt in formats():
        if fmt.is_table(table_dir):
            return fmt
    return None


def probe(table_dir: str) -> tuple[TableFormat, str | None] | None:
    """`format_of` and that format's log signature in one look (None: no table), the signature
    qualified by the format's name: a table re-created in another format never matches."""
    for fmt in formats():
        is_table, sig = fmt.probe(table_dir)
        if is_table:
            return fmt, (f"{fmt.name}:{sig}" if sig is not None else None)
    return None


def require_format(table_dir: Path) -> TableFormat:
    """`format_of`, refusing a directory that is no table by name."""
    fmt = format_of(table_dir)
    if fmt is None:
        titles = " or ".join(f.title for f in formats())
        raise TableFormatError(f"{table_dir}: not a {titles} table")
    return fmt
