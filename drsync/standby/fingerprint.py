"""One side's fingerprint of one table at one version (what `drsync verify` compares): the
files the version needs with their sizes and hashes, the commit hashes, and with `deep` the
rows as DuckDB reads them. Computed on this host, or by the other host's agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from drsync.errors import DrsyncError
from drsync.sets.digest import file_hash
from drsync.tableformat import require_format
from drsync.tableformat.base import FileRole


class Fingerprint(BaseModel):
    """One side's copy of one table at one version; plain data, so it can cross the link."""

    version: int
    error: str = ""  # the log could not be replayed at `version` on this side
    needs: list[str] | None = None  # data/DV files `version` needs (None: not replayable)
    files: dict[str, tuple[int, str]] = {}  # rel -> (size, blake2b) of those present here
    commits: dict[int, str] = {}  # commit version <= `version` -> blake2b
    rows: tuple[int, int] | None = None  # (count, checksum) read by DuckDB
    rows_error: str = ""


def fingerprint(table_dir: Path, name: str, version: int, deep: bool = False,
                also_hash: list[str] | None = None, con: Any = None) -> Fingerprint:
    """This side's fingerprint. `also_hash`: files the other side's version needs, hashed here
    too when present, so a file both hold is compared even where this side cannot replay.
    `con`: row readers by format name (opened here when absent)."""
    fp = Fingerprint(version=version)
    try:
        fmt = require_format(table_dir)
        fp.commits = {cv: file_hash(table_dir / rel)
                      for cv, rel in fmt.commits(table_dir).items() if cv <= version}
        # a file the standby rewrites on install (Iceberg's position deletes and deletion
        # vectors hold paths) differs by design: compared by rows (`deep`), not by bytes
        fp.needs = sorted(rel for rel, ref in fmt.snapshot_files(table_dir, name, version).items()
                          if not fmt.rewrites_on_install or fmt.role(ref.kind) is FileRole.DATA)
    except DrsyncError as e:
        fp.error = e.message
    for rel in sorted(set(fp.needs or []) | set(also_hash or [])):
        path = table_dir / rel
        if path.is_file():
            fp.files[rel] = (path.stat().st_size, file_hash(path))
    if deep:
        try:
            fmt = require_format(table_dir)
            readers = con if con is not None else {}
            if fmt.name not in readers:
                readers[fmt.name] = fmt.open_row_reader()
            fp.rows = fmt.row_checksum(readers[fmt.name], table_dir, version)
        except Exception as e:  # DuckDB raises its own error types
            fp.rows_error = _first_line(e)
    return fp


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
