"""Delete files (position deletes, equality deletes, deletion vectors) on the standby.

Position-delete files and deletion vectors carry absolute data-file paths inside them, which
a copy at another path must rewrite (drsync/tableformat/iceberg/{deletefiles,puffin}.py, in
progress). Until that is wired in, a table with delete files is refused by name: silently
copying it would make the standby read the primary's files, or apply no deletes at all.
"""

from __future__ import annotations

from pathlib import Path

from drsync.errors import TableFormatError

SUPPORTED = False  # the one switch: True once rewrite_delete_file rewrites instead of refusing
CONTENT_NAMES = {1: "position deletes", 2: "equality deletes"}


def refuse_delete_files(name: str, rel: str, content: int) -> None:
    """Collect side: a table reaching a delete file is refused while SUPPORTED is False."""
    if not SUPPORTED:
        kind = CONTENT_NAMES.get(content, f"content {content}")
        raise TableFormatError(
            f"table {name}: delete files: not yet supported ({rel} holds {kind}; its data-file "
            "paths would need rewriting on the standby)",
            hint="compact the table (rewrite data files without deletes) or leave it unpublished")


def rewrite_delete_file(src: Path, dst: Path, old: str, new: str, *, table: str) -> int:
    """Write `src` to `dst` with its data-file paths moved from `old` to `new`; the size."""
    raise TableFormatError(f"table {table}: delete files: not yet supported ({src.name})")
