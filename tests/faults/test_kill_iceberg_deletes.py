"""kill -9 inside the Iceberg delete-file rewrites (position deletes, deletion vectors).

Each rewrite runs in a child process killed with SIGKILL at its crash point (temp file complete
and fsynced, not yet renamed), writing in place over the file as the standby does when a file
is re-shipped. After the kill the file is still the old one, byte for byte (never half
written); the only leftover is a `.drsync-tmp-` file, which `remove_stale_temps` removes; a
re-run converges to exactly the bytes of an undisturbed run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from drsync.fsutil import TMP_PREFIX, remove_stale_temps
from tests.faults.conftest import Reliability
from tests.unit.tableformat.iceberg.relocate import LOCATIONS, TEST_DATA

_RUN = r"""
import sys
from pathlib import Path
from drsync.tableformat.iceberg.deletefiles import rewrite_position_deletes
from drsync.tableformat.iceberg.puffin import rewrite_deletion_vectors
fn = rewrite_deletion_vectors if sys.argv[1].endswith(".puffin") else rewrite_position_deletes
f = Path(sys.argv[1])
fn(f, f, sys.argv[2], sys.argv[3])
"""

CASES = [
    ("spark_v2_position_deletes", "data/00000-12-ac52ac46-8deb-43f9-b745-e7c078928b7a-00001-deletes.parquet",
     "iceberg.position_deletes.written"),
    ("v3_deletion_vectors", "data/multiple-deletion-vectors.puffin", "iceberg.deletion_vectors.written"),
]
NEW = "/srv/standby/wh/t"


def _run(f: Path, old: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _RUN, str(f), old, NEW], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=120)


@pytest.mark.parametrize(("table", "rel", "point"), CASES, ids=[c[0] for c in CASES])
def test_kill_at_the_rename_converges(table: str, rel: str, point: str, tmp_path: Path,
                                      reliability: Reliability) -> None:
    rel_trials = reliability("kill -9 in an Iceberg delete-file rewrite",
                             f"SIGKILL at crash point {point}, in-place rewrite")
    src = TEST_DATA / table / rel
    old = LOCATIONS[table]
    clean = tmp_path / "clean" / src.name
    clean.parent.mkdir()
    shutil.copyfile(src, clean)
    counter = tmp_path / "points"
    assert _run(clean, old, {"DRSYNC_CRASH_COUNT": str(counter)}).returncode == 0
    assert counter.read_text().split() == [point]
    with rel_trials.trial():
        f = tmp_path / "killed" / src.name
        f.parent.mkdir()
        shutil.copyfile(src, f)
        p = _run(f, old, {"DRSYNC_CRASH_AT": f"{point}:1"})
        assert p.returncode == -signal.SIGKILL, p.stderr
        assert f.read_bytes() == src.read_bytes()  # still the old file, whole
        temps = [q.name for q in f.parent.iterdir() if q.name.startswith(TMP_PREFIX)]
        assert len(temps) == 1
        assert remove_stale_temps(f.parent) == 1
        assert _run(f, old, {}).returncode == 0
        assert f.read_bytes() == clean.read_bytes()  # converged: same bytes as undisturbed
        assert sorted(q.name for q in f.parent.iterdir()) == [src.name]
