"""Delete files (position deletes, equality deletes, deletion vectors) on the standby.

Position-delete files (Parquet) and deletion vectors (Puffin) carry absolute data-file paths
inside them, which the standby's copy rewrites to its own location (`deletefiles`, `puffin`);
their manifest entries carry paths too (`referenced_data_file`, the `file_path` column's
bounds) and the rewritten file's size. Equality-delete files hold column values, no paths:
they are installed as shipped. The rewrite happens while the table's manifests are rewritten
(rewrite.py), on the staged copy (staging is rebuilt by any re-run, so a rewrite always starts
from the primary's bytes and writes the same bytes again).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drsync.errors import TableFormatError
from drsync.tableformat.iceberg.deletefiles import rebase_delete_entry, rewrite_position_deletes
from drsync.tableformat.iceberg.puffin import rewrite_deletion_vectors

SUPPORTED = True  # the one switch: False refuses every table that reaches a delete file
CONTENT_NAMES = {1: "position deletes", 2: "equality deletes"}
POSITION_DELETES = 1


def refuse_delete_files(name: str, rel: str, content: int) -> None:
    """Collect side: a table reaching a delete file is refused while SUPPORTED is False."""
    if not SUPPORTED:
        kind = CONTENT_NAMES.get(content, f"content {content}")
        raise TableFormatError(
            f"table {name}: delete files: not yet supported ({rel} holds {kind}; its data-file "
            "paths would need rewriting on the standby)",
            hint="compact the table (rewrite data files without deletes) or leave it unpublished")


def rewrite_delete_file(src: Path, dst: Path, old: str, new: str, *, table: str,
                        puffin: bool | None = None) -> int:
    """Write `src` to `dst` with its data-file paths moved from `old` to `new`; the size.
    `puffin`: a deletion-vector file (default: judged by the `.puffin` suffix)."""
    if puffin is None:
        puffin = src.suffix.lower() == ".puffin"
    try:
        if puffin:
            return rewrite_deletion_vectors(src, dst, old, new)
        return rewrite_position_deletes(src, dst, old, new)
    except TableFormatError as e:
        raise TableFormatError(f"table {table}: {e.message}", hint=e.hint) from None


class DeleteEntries:
    """The delete-file entries of one table's manifests being rewritten for the standby."""

    def __init__(self, staged_table: Path, installed_dir: Path, shipped: set[str], old: str,
                 new: str, *, table: str) -> None:
        self.staged, self.installed, self.shipped = staged_table, installed_dir, shipped
        self.old, self.new, self.table = old, new, table
        self.sizes: dict[str, int] = {}  # rel path -> size of the rewritten file

    def fix(self, data_file: dict[str, Any], rel: str, *, where: str) -> None:
        """One manifest entry's `data_file` of content 1 (`rel`: the delete file's path under
        the table): rewrite the file if this set ships it (once), set its size, rebase paths."""
        if data_file.get("content") != POSITION_DELETES:
            return
        size = self.sizes.get(rel)
        if size is None:
            puffin = str(data_file.get("file_format", "")).upper() == "PUFFIN"
            if rel in self.shipped:
                size = rewrite_delete_file(self.staged / rel, self.staged / rel, self.old,
                                           self.new, table=self.table, puffin=puffin)
            else:  # installed by an earlier set, already rewritten: its size on the standby
                try:
                    size = (self.installed / rel).stat().st_size
                except FileNotFoundError:
                    size = None  # a DELETED entry's file, gone: its paths are still moved
            if size is not None:
                self.sizes[rel] = size
        if size is not None:
            data_file["file_size_in_bytes"] = size
        rebase_delete_entry(data_file, self.old, self.new, where=f"table {self.table}: {where}")
