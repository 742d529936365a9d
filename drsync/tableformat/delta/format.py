"""`DeltaFormat`: Delta Lake as a `TableFormat` (the protocol: drsync/tableformat/base.py).

Delta's commit point is each commit file `_delta_log/<v>.json`, created only if absent; data
paths in the log are relative, so a copy at another path needs no rewrite.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from drsync.tableformat.base import (
    FileRef,
    FileRole,
    ForkedTable,
    SetAsidePlan,
    TableChange,
    TableFormat,
    TableInventory,
)
from drsync.tableformat.delta import actions, checkpoints, collect, fork, log, reader
from drsync.tableformat.delta.log import LOG_DIR, LogListing

_COMMIT_PATH = re.compile(rf"^{LOG_DIR}/(\d{{20}})\.json$")
_ROLES = {"data": FileRole.DATA, "dv": FileRole.DATA, "cdc": FileRole.DATA,
          "commit": FileRole.COMMIT, "last_checkpoint": FileRole.POINTER}
KINDS = ("data", "dv", "cdc", "commit", "checkpoint", "sidecar", "crc", "compacted", "last_checkpoint")
ABOVE_ALL = 1 << 62  # sorts a log file above every version


class DeltaFormat(TableFormat):
    # configure, after_install, local_change, rewrite_on_install: the protocol's no-op defaults
    # (no settings; each commit file is its own commit point, compared by the generic check
    # apply.check_conflicts; paths are relative to the table, so a copy reads as it is)
    name = "delta"
    title = "Delta"
    log_dir = LOG_DIR
    kinds: tuple[str, ...] = KINDS
    rewrites_on_install = False

    def is_table(self, table_dir: Path) -> bool:
        return log.is_delta_table(table_dir)

    def read_log(self, table_dir: Path) -> LogListing:
        return log.list_log(table_dir)

    def log_signature(self, table_dir: Path) -> str | None:
        return log.log_signature(table_dir)

    def probe(self, table_dir: str) -> tuple[bool, str | None]:
        return log.probe(table_dir)

    def barrier_version(self, table_dir: Path, listing: Any, barrier_ms: int, floor: int) -> int | None:
        return actions.barrier_version(table_dir, listing, barrier_ms, floor)

    def commits(self, table_dir: Path) -> dict[int, str]:
        return {v: lf.name for v, lf in log.list_log(table_dir).commits.items()}

    def snapshot_files(self, table_dir: Path, name: str, version: int) -> dict[str, FileRef]:
        return checkpoints.snapshot(table_dir, version, log.list_log(table_dir), name).data_files

    def collect(self, table_dir: Path, name: str, listing: Any, barrier_ms: int,
                prev: TableInventory | None) -> TableChange | None:
        return collect.collect_changes(table_dir, name, listing, barrier_ms, prev)

    def role(self, kind: str) -> FileRole:
        return _ROLES.get(kind, FileRole.LOG)

    def check_file(self, kind: str, path: str, version: int | None) -> bool:
        """A file's kind decides how it is installed (commits: create-if-absent, never
        replaced), so a kind that does not match its path is refused rather than trusted."""
        in_log = path.startswith(f"{LOG_DIR}/")
        if kind == "commit":
            m = _COMMIT_PATH.match(path)
            return m is not None and int(m[1]) == version
        if kind in collect.DATA_KINDS:
            return not in_log
        if kind == "last_checkpoint":
            return path == f"{LOG_DIR}/{log.LAST_CHECKPOINT}"
        return in_log

    def install_order(self, files: list[Any], full_copy: bool) -> list[Any]:
        base = None
        if full_copy:
            ckpts = [f.version for f in files if f.kind == "checkpoint" and f.version is not None]
            base = min(ckpts) if ckpts else None
        return sorted(files, key=lambda f: collect.apply_rank(f.kind, f.version, f.path, base))

    def open_row_reader(self, threads: int | None = None) -> Any:
        return reader.connect(threads)

    def row_checksum(self, con: Any, table_dir: Path, version: int | None) -> tuple[int, int]:
        return reader.table_checksum(con, table_dir, version)

    def sample_rows(self, con: Any, table_dir: Path, version: int, limit: int) -> int:
        return reader.sample_rows(con, table_dir, version, limit)

    def fork(self, src: Path, dest: Path, name: str, version: int, key: str, *, copy: bool,
             final: Path | None = None) -> ForkedTable:
        return fork.fork_table(src, dest, name, version, key, copy=copy)

    def set_aside_plan(self, table_dir: Path, name: str, version: int) -> SetAsidePlan:
        listing = log.list_log(table_dir)
        ranked: list[tuple[int, str]] = []
        for lf in listing.all_files():
            span = log.log_version(lf.name)
            if span is None:  # _last_checkpoint: a hint; set aside if it points above `version`
                points_at = log.last_checkpoint_version(table_dir, lf)
                if points_at is None or points_at > version:
                    ranked.append((ABOVE_ALL, lf.name))
            elif span[1] > version:
                ranked.append((span[1], lf.name))
        plan = SetAsidePlan([rel for _, rel in sorted(ranked, reverse=True)], [], set(), 0)
        for v in sorted(listing.commits):
            if v <= version:
                continue
            lf = listing.commits[v]
            where = str(table_dir / lf.name)
            acts = actions.parse_commit_bytes((table_dir / lf.name).read_bytes(), where=where)
            plan.data_files |= {ref.path for ref in actions.files_added(acts, table=name, where=where)}
            plan.rows += actions.rows_added(acts)
            plan.commits.append(v)
        return plan

    def held_log_files(self, table_dir: Path) -> dict[str, int]:
        return {lf.name: lf.size for lf in log.list_log(table_dir).all_files()
                if not lf.name.endswith(log.LAST_CHECKPOINT)}
