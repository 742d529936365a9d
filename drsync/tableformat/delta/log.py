"""Delta Lake log reading: what files a table is made of, per version.

Why our own replay instead of `deltalake.DeltaTable`: drsync needs the *files* behind a version
(data, deletion-vector and change-data files, checkpoint parts, sidecars), including tables
whose reader features delta-rs refuses to open (variant types, newer protocol features) and
tables whose log is partly cleaned. That is the simple, stable part of the protocol: list
`_delta_log`, read `add`/`remove`/`cdc`/`sidecar` actions from JSON commits and Parquet
checkpoints. Reading *rows* is left to real readers (DuckDB, deltalake) in verify and tests.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drsync.errors import TableFormatError

LOG_DIR = "_delta_log"
SIDECAR_DIR = "_sidecars"
LAST_CHECKPOINT = "_last_checkpoint"

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CRC = re.compile(r"^(\d{20})\.crc$")
_CKPT_CLASSIC = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
_CKPT_MULTI = re.compile(r"^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$")
_CKPT_V2 = re.compile(r"^(\d{20})\.checkpoint\.[0-9a-fA-F-]{36}\.(json|parquet)$")
_COMPACTED = re.compile(r"^(\d{20})\.(\d{20})\.compacted\.json$")


@dataclass(frozen=True)
class LogFile:
    name: str  # relative to the table root, e.g. "_delta_log/00000000000000000003.json"
    size: int
    mtime_ns: int


@dataclass
class Checkpoint:
    version: int
    files: list[LogFile]  # all parts (multi-part) or the single top-level file
    kind: str  # "classic" | "multipart" | "v2"
    complete: bool = True


@dataclass
class LogListing:
    """One `listdir` of `_delta_log`, classified. Costs one directory scan per table."""

    format_name = "delta"  # TableLog: which TableFormat read it
    commits: dict[int, LogFile] = field(default_factory=dict)
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
    crcs: dict[int, LogFile] = field(default_factory=dict)
    compactions: list[tuple[int, int, LogFile]] = field(default_factory=list)
    last_checkpoint: LogFile | None = None

    @property
    def latest_version(self) -> int | None:
        candidates = list(self.commits) + [v for v, c in self.checkpoints.items() if c.complete]
        return max(candidates) if candidates else None

    def newest_checkpoint(self, at_most: int) -> Checkpoint | None:
        ok = [v for v, c in self.checkpoints.items() if c.complete and v <= at_most]
        return self.checkpoints[max(ok)] if ok else None

    def all_files(self) -> list[LogFile]:
        out = list(self.commits.values()) + list(self.crcs.values())
        for c in self.checkpoints.values():
            out.extend(c.files)
        out.extend(f for _, _, f in self.compactions)
        if self.last_checkpoint:
            out.append(self.last_checkpoint)
        return out


def is_delta_table(path: Path) -> bool:
    return (path / LOG_DIR).is_dir()


def list_log(table_dir: Path) -> LogListing:
    listing = LogListing()
    log = table_dir / LOG_DIR
    multi: dict[int, dict[str, Any]] = {}
    try:
        entries = list(os.scandir(log))
    except FileNotFoundError:
        raise TableFormatError(f"{table_dir}: no {LOG_DIR} directory, not a Delta table") from None
    for e in entries:
        if not e.is_file(follow_symlinks=False):
            continue
        try:
            st = e.stat(follow_symlinks=False)
        except FileNotFoundError:
            # Gone since the scan: a writer's staged commit (object_store writes `<v>.json#<n>`
            # and links it into place), a log file cleaned up. Not in this listing, as if the
            # scan had come a moment later.
            continue
        lf = LogFile(f"{LOG_DIR}/{e.name}", st.st_size, st.st_mtime_ns)
        if m := _COMMIT.match(e.name):
            listing.commits[int(m[1])] = lf
        elif m := _CRC.match(e.name):
            listing.crcs[int(m[1])] = lf
        elif m := _CKPT_CLASSIC.match(e.name):
            listing.checkpoints[int(m[1])] = Checkpoint(int(m[1]), [lf], "classic")
        elif m := _CKPT_MULTI.match(e.name):
            slot = multi.setdefault(int(m[1]), {"parts": int(m[3]), "files": []})
            slot["files"].append(lf)
        elif m := _CKPT_V2.match(e.name):
            # Several writers may race to write a V2 checkpoint of one version: any one will do,
            # but always the same one (smallest name), or rounds would flip between them and
            # delete on the standby the one it has.
            v = int(m[1])
            had = listing.checkpoints.get(v)
            if had is None or (had.kind == "v2" and lf.name < had.files[0].name):
                listing.checkpoints[v] = Checkpoint(v, [lf], "v2")
        elif m := _COMPACTED.match(e.name):
            listing.compactions.append((int(m[1]), int(m[2]), lf))
        elif e.name == LAST_CHECKPOINT:
            listing.last_checkpoint = lf
    for v, slot in multi.items():
        if v not in listing.checkpoints:
            files = sorted(slot["files"], key=lambda f: f.name)
            listing.checkpoints[v] = Checkpoint(
                v, files, "multipart", complete=len(files) == slot["parts"]
            )
    return listing


def log_version(name: str) -> tuple[int, int] | None:
    """(first, last) version a log file belongs to, or None for `_last_checkpoint`."""
    base = name.rsplit("/", 1)[-1]
    if base == LAST_CHECKPOINT:
        return None
    first = int(base[:20])
    if base.endswith(".compacted.json"):
        return first, int(base[21:41])
    return first, first


def log_kind(name: str) -> str:
    if name.endswith(".compacted.json"):
        return "compacted"
    if ".checkpoint." in name:
        return "checkpoint"
    if name.endswith(".crc"):
        return "crc"
    if name.endswith(LAST_CHECKPOINT):
        return "last_checkpoint"
    return "commit"


def last_checkpoint_version(table_dir: Path, lf: LogFile) -> int | None:
    """The version `_last_checkpoint` points at, None for a torn or odd hint file."""
    try:
        return int(json.loads((table_dir / lf.name).read_bytes())["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def log_signature(table_dir: Path) -> str | None:
    """Identity of a `_delta_log` (`probe`'s signature), None when unreadable or no table."""
    return probe(str(table_dir))[1]


# Errors that make `Path.is_dir` answer False (pathlib's own list): `probe` agrees with
# `is_delta_table` on what a table is, and like it lets any other error (EACCES) through.
_NOT_THERE = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)


def probe(table_dir: str) -> tuple[bool, str | None]:
    """(is this a Delta table, its log signature or None when unreadable) in one look: the
    round's discovery and its unchanged-table fast path share it (primary/roundindex.py).

    The signature is the `_delta_log` directory's inode, mtime and ctime, a digest of its
    entry names, and `_last_checkpoint`'s size and mtime. Names, because some filesystems keep
    times in whole seconds; the directory's times too, because a table dropped and re-created
    reuses every name and often the freed inode. Plain `str` paths and one stat, one listdir
    (and a stat of `_last_checkpoint` only when it is listed): this runs for every table every
    round, and pathlib joins cost more than the system calls here."""
    log_dir = table_dir + "/" + LOG_DIR
    try:
        st = os.stat(log_dir)
    except OSError as e:
        if e.errno in _NOT_THERE:
            return False, None
        raise
    if not stat.S_ISDIR(st.st_mode):
        return False, None
    try:
        names = os.listdir(log_dir)
    except OSError:
        return True, None
    names.sort()
    # `_last_checkpoint` is the one log file a writer may rewrite in place (same name, and no
    # change to the directory when it is not replaced by a rename): its size and mtime too.
    # Not listed: a file created after the listing changes the names of the next one.
    last = "-"
    if LAST_CHECKPOINT in names:
        try:
            lc = os.stat(log_dir + "/" + LAST_CHECKPOINT)
            last = f"{lc.st_size}:{lc.st_mtime_ns}"
        except FileNotFoundError:
            pass  # removed since the listing: the next listing's names differ
        except OSError:
            return True, None
    digest = hashlib.blake2b("\0".join(names).encode(), digest_size=16).hexdigest()
    return True, f"{st.st_ino}:{st.st_mtime_ns}:{st.st_ctime_ns}:{digest}:{last}"
