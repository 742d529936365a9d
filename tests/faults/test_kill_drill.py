"""kill -9 at every crash point of `drill start` and `drill drop` (drsync/faults.py).

After each kill: the drill's directory either does not exist or is complete (every table
readable by DuckDB with the rows of its barrier version); no replicated file changed (inode,
link count, mode, content); the next drill command cleans the temp directory a killed start
left, or finishes a killed drop, and the record agrees with what is on disk.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from drsync.demo import ROUND_WRITES, TABLES, create_sample_warehouse, table_dir
from drsync.site.layout import DRILLS_DIR
from tests.faults.conftest import Reliability
from tests.helpers import Sites, drsync, duck, rows
from tests.integration.test_drill import FileFacts, _round, facts

pytestmark = pytest.mark.crash


def _cli(sites: Sites, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return drsync(*args, "-c", str(sites.config), env=env, timeout=120)


def _points(sites: Sites, tmp: Path, *args: str) -> list[str]:
    counter = tmp / "points"
    counter.unlink(missing_ok=True)
    p = _cli(sites, *args, env={"DRSYNC_CRASH_COUNT": str(counter)})
    assert p.returncode == 0, p.stdout + p.stderr
    return counter.read_text().split()


def _unchanged(now: FileFacts, before: FileFacts) -> bool:
    """Same files, inodes, modes and contents; link counts aside (a killed start's temp
    directory holds links until the next drill command removes it)."""
    def strip(f: FileFacts) -> dict[str, tuple[int, int, str]]:
        return {k: (ino, mode, digest) for k, (ino, _, mode, digest) in f.items()}

    return strip(now) == strip(before)


def _leftovers(parent: Path) -> list[str]:
    return [e.name for e in parent.iterdir() if e.name.startswith(".drsync-drill")]


def test_kill_during_drill_start_and_drop(sites: Sites, tmp_path: Path,
                                          reliability: Reliability) -> None:
    create_sample_warehouse(sites.primary, rows=10)
    _round(sites)
    ROUND_WRITES[0](sites.primary, 1)
    _round(sites)
    con = duck()
    parent = tmp_path / "drills"
    parent.mkdir()
    fork = parent / "k"
    start = ("drill", "start", "k", "--into", str(fork))
    points = _points(sites, tmp_path, *start)
    steps = {"drill.recorded", "drill.log_copied", "drill.table", "drill.built", "drill.renamed"}
    assert steps <= set(points)
    expected: dict[str, Any] = {n: rows(con, table_dir(fork, n)) for n in TABLES}
    _cli(sites, "drill", "drop", "k", "--yes")
    standby = facts(sites.standby)
    rel_start = reliability("kill -9 during drill start", "SIGKILL at each crash point of `drill start`")
    rel_drop = reliability("kill -9 during drill drop", "SIGKILL at each crash point of `drill drop`")

    for i in range(1, len(points) + 1):
        with rel_start.trial():
            _killed_start(sites, con, start, i, points, expected, standby, parent, fork)

    # drop killed at each of its points: the next command finishes it
    _cli(sites, *start)
    drop_points = _points(sites, tmp_path, "drill", "drop", "k", "--yes")
    assert drop_points
    for i in range(1, len(drop_points) + 1):
        with rel_drop.trial():
            what = f"drop killed at point {i} ({drop_points[i - 1]})"
            p = _cli(sites, *start)
            assert p.returncode == 0, f"{what}: {p.stderr}"
            p = _cli(sites, "drill", "drop", "k", "--yes", env={"DRSYNC_CRASH_AT": f"*:{i}"})
            assert p.returncode == -9, what
            assert _unchanged(facts(sites.standby), standby), what
            listed = json.loads(_cli(sites, "drill", "list", "--format", "json").stdout)
            assert listed == [] and not fork.exists() and _leftovers(parent) == [], what
    assert facts(sites.standby) == standby


def _killed_start(sites: Sites, con: Any, start: tuple[str, ...], i: int, points: list[str],
                  expected: dict[str, Any], standby: FileFacts, parent: Path, fork: Path) -> None:
    what = f"start killed at point {i} ({points[i - 1]})"
    p = _cli(sites, *start, env={"DRSYNC_CRASH_AT": f"*:{i}"})
    assert p.returncode == -9, f"{what}: {p.returncode} {p.stderr}"
    assert _unchanged(facts(sites.standby), standby), what
    if fork.exists():  # complete, never half-made
        for name in TABLES:
            assert rows(con, table_dir(fork, name)) == expected[name], f"{what}: {name}"
    existed = fork.exists()
    listed = json.loads(_cli(sites, "drill", "list", "--format", "json").stdout)
    assert _leftovers(parent) == [], what
    assert [d["name"] for d in listed] == (["k"] if existed else []), what
    assert fork.exists() == existed, what
    if existed:
        assert listed[0]["state"] == "ready"
        p = _cli(sites, "drill", "drop", "k", "--yes")
        assert p.returncode == 0, f"{what}: {p.stderr}"
    assert not (sites.standby_meta / DRILLS_DIR / "k.json").exists(), what
    assert facts(sites.standby) == standby, f"{what}: link counts back after the cleanup"
