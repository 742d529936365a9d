"""Apache Iceberg, the second `TableFormat` (issue 19; see drsync/tableformat/__init__.py).

Modules: `metadata` (the pointer, the metadata chain, table-location paths), `reachable`
(what a metadata JSON reaches), `collect` (what a set ships), `rewrite` (the standby's copy
moved to its own location), `deleterewrite` (delete files: the paths inside position deletes
and deletion vectors, with `deletefiles`, `puffin`, `prefix`), `reader` (DuckDB's iceberg
extension for verify --deep), `format` (`IcebergFormat`).
"""

from drsync.tableformat.base import TableFormat
from drsync.tableformat.iceberg.format import IcebergFormat

FORMAT: TableFormat = IcebergFormat()  # found by drsync.tableformat.formats()

__all__ = ["FORMAT", "IcebergFormat"]
