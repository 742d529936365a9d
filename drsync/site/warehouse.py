"""The warehouse tree and its tables, in either layout (names.py says how names map to paths):

* `dws` (default): `<warehouse>/<db>/<schema>/<table>/`, tables named `db.schema.table`;
* `hive`: what Spark writes, `<warehouse>/<db>.db/<table>/`, the `default` database's tables
  directly under the root, named `db.table`.

A table is a directory that a known table format recognises (tableformat/). Directories
starting with '.' or '_' are never databases, schemas or tables (hidden, or drsync's own
`_drsync`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from drsync.site.names import (
    DEFAULT_DB,
    HIVE_DB_SUFFIX,
    format_name,
    parse_name,
    relpath_parts,
)
from drsync.tableformat import format_of

Layout = Literal["dws", "hive"]


@dataclass(frozen=True)
class TableRef:
    db: str
    schema: str  # "" in the hive layout, which has no schemas
    table: str

    @property
    def parts(self) -> tuple[str, ...]:
        return (self.db, self.schema, self.table) if self.schema else (self.db, self.table)

    @property
    def name(self) -> str:
        return format_name(self.parts)

    @property
    def relpath(self) -> str:
        return "/".join(relpath_parts(self.parts))

    def path(self, warehouse: Path) -> Path:
        return warehouse.joinpath(*relpath_parts(self.parts))

    @classmethod
    def parse(cls, name: str) -> TableRef:
        parts = parse_name(name, "table", counts=(2, 3))
        return cls(parts[0], "", parts[1]) if len(parts) == 2 else cls(*parts)


def _subdirs(path: Path) -> list[str]:
    try:
        return sorted(
            e.name for e in os.scandir(path)
            if e.is_dir(follow_symlinks=False) and not e.name.startswith((".", "_"))
        )
    except (FileNotFoundError, NotADirectoryError):
        return []


def _is_table(path: Path) -> bool:
    return format_of(path) is not None


def discover_tables(warehouse: Path, layout: Layout = "dws") -> list[TableRef]:
    """Every table (of any known format) of the warehouse in `layout`, sorted by path."""
    found: list[TableRef] = []
    if layout == "hive":
        for entry in _subdirs(warehouse):
            if _is_table(warehouse / entry):
                found.append(TableRef(DEFAULT_DB, "", entry))
            elif entry.endswith(HIVE_DB_SUFFIX) and entry != DEFAULT_DB + HIVE_DB_SUFFIX:
                db = entry[: -len(HIVE_DB_SUFFIX)]
                found += [TableRef(db, "", t) for t in _subdirs(warehouse / entry)
                          if _is_table(warehouse / entry / t)]
        return found
    for db in _subdirs(warehouse):
        for schema in _subdirs(warehouse / db):
            for table in _subdirs(warehouse / db / schema):
                if _is_table(warehouse / db / schema / table):
                    found.append(TableRef(db, schema, table))
    return found
