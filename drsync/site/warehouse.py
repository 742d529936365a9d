"""The warehouse tree: `<warehouse>/<db>/<schema>/<table>/` with a `_delta_log` inside."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from drsync.tableformat.delta import LOG_DIR

# drsync's own directory in a warehouse (barrier maps, staging); never a database.
DRSYNC_DIR = "_drsync"


@dataclass(frozen=True)
class TableRef:
    db: str
    schema: str
    table: str

    @property
    def name(self) -> str:
        return f"{self.db}.{self.schema}.{self.table}"

    @property
    def relpath(self) -> str:
        return f"{self.db}/{self.schema}/{self.table}"

    def path(self, warehouse: Path) -> Path:
        return warehouse / self.db / self.schema / self.table

    @classmethod
    def parse(cls, name: str) -> TableRef:
        db, schema, table = name.split(".")
        return cls(db, schema, table)


def _subdirs(path: Path) -> list[str]:
    try:
        return sorted(
            e.name for e in os.scandir(path)
            if e.is_dir(follow_symlinks=False) and not e.name.startswith((".", "_"))
        )
    except (FileNotFoundError, NotADirectoryError):
        return []


def discover_tables(warehouse: Path) -> list[TableRef]:
    """Every Delta table three levels below the warehouse root, sorted by name.

    Names with a '.' cannot be told apart in `db.schema.table`; such directories are listed
    anyway and refused per table by the caller, with a message, rather than silently skipped.
    """
    found: list[TableRef] = []
    for db in _subdirs(warehouse):
        if db == DRSYNC_DIR:
            continue
        for schema in _subdirs(warehouse / db):
            for table in _subdirs(warehouse / db / schema):
                if (warehouse / db / schema / table / LOG_DIR).is_dir():
                    found.append(TableRef(db, schema, table))
    return found
