"""Files of a drill's fork (TableFormat.fork, roles/drill.py), shared by every format.

A fork's data files are hard links to the standby's (no bytes written; a writer of the fork
adds files, it never changes one), or copies with `copy=True` (another filesystem).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from drsync.errors import DrillError
from drsync.fsutil import RW_DIR, RW_FILE
from drsync.tableformat.base import ForkedTable


def parent_made(root: Path, rel: str, made: set[Path]) -> Path:
    """`root / rel`, its parent directories created (0755) unless `made` holds them already."""
    target = root / rel
    parent = target.parent
    if parent not in made:
        os.makedirs(parent, mode=RW_DIR, exist_ok=True)
        made.add(parent)
    return target


def place_data_file(src: Path, dest: Path, rel: str, made: set[Path], out: ForkedTable, *,
                    copy: bool) -> None:
    """`src/rel` linked (copied with `copy`) to `dest/rel`, counted in `out`.
    FileNotFoundError passes up: the caller knows why a file of that version can be gone."""
    target = parent_made(dest, rel, made)
    try:
        if copy:
            shutil.copyfile(src / rel, target)
            os.chmod(target, RW_FILE)
            out.copied_bytes += target.stat().st_size
        else:
            os.link(src / rel, target)
            out.linked_bytes += target.stat().st_size
    except OSError as e:
        if e.errno == errno.EXDEV:
            raise DrillError(f"{dest} is on another filesystem than {src}: data files cannot be "
                             "hard-linked", hint="put the drill on the standby warehouse's "
                             "filesystem, or pass --copy to copy the data") from None
        raise
    out.files += 1
