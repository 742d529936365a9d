"""One table of a drill: a writable Delta table at one version of a replicated table.

Delta data files never change once written, so a fork needs its own log, not its own data:

* the log from the newest checkpoint at or below the version up to the version is **copied**
  (fresh inodes, mode 0644: a writer of the fork appends to its own log, never to the
  replicated one), mtimes kept (readers use them as commit times);
* `_last_checkpoint` is copied only when it names that same checkpoint; otherwise it is left
  out (readers then list the log), so the fork never points at a checkpoint above its version;
* data, deletion-vector and sidecar files the version reads are **hard-linked** (no bytes
  copied), and the change-data files the copied commits name, where the standby still has
  them. A link shares the replicated file's inode, so its mode (0444) is never changed
  here: a Delta writer never modifies a data file, it only adds new ones and unlinks old ones,
  which needs the fork's *directories* to be writable (they are, 0755, all created here).
  When the standby later removes its name for a file (VACUUM mirrored), the fork's name keeps
  the data.
* `copy=True` copies data files instead (another filesystem).
"""

from __future__ import annotations

import os
from pathlib import Path

from drsync.errors import DrillError, TableFormatError
from drsync.faults import crash_point
from drsync.fsutil import RW_FILE, read_json_object
from drsync.tableformat.base import ForkedTable
from drsync.tableformat.delta.actions import files_added, parse_commit_bytes
from drsync.tableformat.delta.checkpoints import snapshot
from drsync.tableformat.delta.log import LAST_CHECKPOINT, LOG_DIR, list_log
from drsync.tableformat.forkfiles import parent_made, place_data_file


def fork_table(src: Path, dest: Path, name: str, version: int, key: str, *, copy: bool) -> ForkedTable:
    """Build the fork of table `name` (at `src`) at `version` in the new directory `dest`."""
    why = (f"table {name}: cannot fork barrier {key} (version {version})")
    try:
        listing = list_log(src)
        latest = listing.latest_version
        if latest is None or version > latest:
            raise DrillError(f"{why}: the standby holds only version {listing.latest_version}")
        snap = snapshot(src, version, listing, name)
    except TableFormatError as e:
        raise DrillError(f"{why}: {e.message}; the primary's log cleanup removed what that version "
                         "needs", hint="fork a newer barrier (drsync drill start --at KEY)") from None
    except FileNotFoundError as e:
        raise DrillError(f"{why}: {e.filename} was removed while reading the log",
                         hint="fork a newer barrier, or run the drill again") from None
    out = ForkedTable(name, version)
    ckpt = snap.checkpoint
    first = ckpt.version if ckpt is not None else 0
    log_files = [f.name for f in ckpt.files] if ckpt is not None else []
    log_files += [lf.name for v, lf in sorted(listing.commits.items()) if first <= v <= version]
    log_files += [lf.name for v, lf in sorted(listing.crcs.items()) if first <= v <= version]
    last = read_json_object(src / LOG_DIR / LAST_CHECKPOINT) if listing.last_checkpoint else None
    if ckpt is not None and last is not None and last.get("version") == ckpt.version:
        log_files.append(f"{LOG_DIR}/{LAST_CHECKPOINT}")
    made: set[Path] = set()
    change_data: set[str] = set()  # CDC files the copied commits name (kept where still present)
    for rel in log_files:
        target = parent_made(dest, rel, made)
        try:
            data = (src / rel).read_bytes()
            st = os.stat(src / rel)
        except FileNotFoundError:
            raise DrillError(f"{why}: log file {rel} was removed on the standby (log cleanup of the "
                             "primary, mirrored)", hint="fork a newer barrier") from None
        with open(target, "xb") as f:
            f.write(data)
        os.chmod(target, RW_FILE)
        os.utime(target, ns=(st.st_mtime_ns, st.st_mtime_ns))
        out.log_bytes += st.st_size
        out.files += 1
        if rel.endswith(".json") and b'"cdc"' in data:
            actions = parse_commit_bytes(data, where=str(src / rel))
            change_data.update(f.path for f in files_added(actions, table=name, where=str(src / rel))
                               if f.kind == "cdc")
    crash_point("drill.log_copied")
    needed = set(snap.data_files) | set(snap.sidecars)
    optional = {p for p in change_data - needed if (src / p).is_file()}
    for rel in sorted(needed | optional):
        try:
            place_data_file(src, dest, rel, made, out, copy=copy)
        except FileNotFoundError:
            if rel in optional:
                continue  # change data removed meanwhile: the snapshot does not need it
            raise DrillError(
                f"{why}: its file {rel} was removed on the standby (VACUUM on the primary, "
                "mirrored after a later set)", hint="fork a newer barrier (drsync drill list shows "
                "the barriers; the newest is the default)") from None
    if not (dest / LOG_DIR).is_dir():
        raise DrillError(f"{why}: no log file at or below that version is left on the standby")
    return out

