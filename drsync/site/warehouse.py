"""The warehouse tree and its tables, in either layout (names.py says how names map to paths):

* `dws` (default): `<warehouse>/<db>/<schema>/<table>/`, tables named `db.schema.table`;
* `hive`: what Spark writes, `<warehouse>/<db>.db/<table>/`, the `default` database's tables
  directly under the root, named `db.table`.

A table is a directory that a known table format recognises (tableformat/). Directories
starting with '.' or '_' are never databases, schemas or tables (hidden, or drsync's own
`_drsync`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal, TypeVar

from drsync.site.names import (
    DEFAULT_DB,
    HIVE_DB_SUFFIX,
    format_name,
    parse_name,
    relpath_parts,
)
from drsync.tableformat import format_of, probe

Layout = Literal["dws", "hive"]
T = TypeVar("T")


@dataclass(frozen=True)
class TableRef:
    db: str
    schema: str  # "" in the hive layout, which has no schemas
    table: str

    @property
    def parts(self) -> tuple[str, ...]:
        return (self.db, self.schema, self.table) if self.schema else (self.db, self.table)

    # Cached (in the instance's __dict__, which a frozen dataclass allows): a round asks every
    # table's name several times, and quoting the parts is most of a no-change round's cost.
    @cached_property
    def name(self) -> str:
        return format_name(self.parts)

    @cached_property
    def relpath(self) -> str:
        return "/".join(relpath_parts(self.parts))

    def path(self, warehouse: Path) -> Path:
        return warehouse.joinpath(*relpath_parts(self.parts))

    @classmethod
    def parse(cls, name: str) -> TableRef:
        parts = parse_name(name, "table", counts=(2, 3))
        return cls(parts[0], "", parts[1]) if len(parts) == 2 else cls(*parts)


def _subdirs(path: str) -> list[tuple[str, str]]:
    """(name, path) of each database/schema/table candidate under `path`, sorted by name."""
    try:
        with os.scandir(path) as it:
            found = [(e.name, e.path) for e in it
                     if e.is_dir(follow_symlinks=False) and not e.name.startswith((".", "_"))]
    except (FileNotFoundError, NotADirectoryError):
        return []
    found.sort()
    return found


def _walk(warehouse: Path, layout: Layout, look: Callable[[str], T | None]) -> list[tuple[TableRef, T]]:
    """Every candidate directory of the layout that `look` (given its path) takes for a table,
    with what `look` returned, sorted by path. `str` paths: this runs for every table every
    round (scan_tables), where pathlib joins cost more than the system calls."""
    found: list[tuple[TableRef, T]] = []
    if layout == "hive":
        for entry, path in _subdirs(str(warehouse)):
            if (got := look(path)) is not None:
                found.append((TableRef(DEFAULT_DB, "", entry), got))
            elif entry.endswith(HIVE_DB_SUFFIX) and entry != DEFAULT_DB + HIVE_DB_SUFFIX:
                db = entry[: -len(HIVE_DB_SUFFIX)]
                for t, tpath in _subdirs(path):
                    if (got := look(tpath)) is not None:
                        found.append((TableRef(db, "", t), got))
        return found
    for db, dbpath in _subdirs(str(warehouse)):
        for schema, spath in _subdirs(dbpath):
            for table, tpath in _subdirs(spath):
                if (got := look(tpath)) is not None:
                    found.append((TableRef(db, schema, table), got))
    return found


def _is_table(path: str) -> bool | None:
    return True if format_of(Path(path)) is not None else None


def discover_tables(warehouse: Path, layout: Layout = "dws") -> list[TableRef]:
    """Every table (of any known format) of the warehouse in `layout`, sorted by path."""
    return [ref for ref, _ in _walk(warehouse, layout, _is_table)]


def scan_tables(warehouse: Path, layout: Layout = "dws") -> list[tuple[TableRef, str | None]]:
    """`discover_tables` with each table's log signature (tableformat.probe; None: unreadable),
    in one pass: what a backup round starts from (primary/roundindex.py)."""
    return [(ref, sig) for ref, (_, sig) in _walk(warehouse, layout, probe)]
