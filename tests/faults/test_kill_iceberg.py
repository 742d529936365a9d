"""kill -9 at every crash point of a restore that applies Iceberg sets (issue 19): a first copy
and an incremental set (new manifests, manifest list, metadata JSON, pointer; an expiry's
deletions). After each kill the standby table, read by DuckDB's iceberg extension and by
pyiceberg with the primary renamed away, holds exactly the rows of a complete snapshot (the
one before the set or the one after); a re-run converges to the barrier."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drsync.fsutil import rmtree_force
from tests.faults.conftest import Reliability
from tests.helpers import Sites, drsync
from tests.iceberg_helpers import batch, catalog, commit, create_dir_table, duck_rows, iceduck, py_rows

pytestmark = pytest.mark.crash


def _cli(sites: Sites, op: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drsync", op, "-c", str(sites.config)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)


def _copy(src: Path, dst: Path) -> None:
    rmtree_force(dst)
    if src.exists():
        shutil.copytree(src, dst, symlinks=True)


def _read(sites: Sites, table: Path) -> list[tuple[Any, ...]] | None:
    """Rows by both readers (equal), primary renamed away; None when no table is there yet."""
    if not (table / "metadata" / "version-hint.text").exists():
        return None
    away = sites.primary.with_name("warehouse.away")
    os.rename(sites.primary, away)
    try:
        got = duck_rows(iceduck(), table)
        assert py_rows(table) == got
        return got
    finally:
        os.rename(away, sites.primary)


def _kill_every_point(sites: Sites, tmp: Path, rel: Any, before: list[tuple[Any, ...]] | None,
                      after: list[tuple[Any, ...]]) -> int:
    dirs = [sites.standby, sites.standby_meta]
    aside = tmp / "aside"
    for i, d in enumerate(dirs):
        _copy(d, aside / str(i))
    counter = tmp / "points"
    counter.unlink(missing_ok=True)
    p = _cli(sites, "restore", {"DRSYNC_CRASH_COUNT": str(counter)})
    assert p.returncode == 0, p.stdout + p.stderr
    points = counter.read_text().split()
    assert any(x == "apply.file" for x in points)
    table = sites.standby / "db" / "s" / "ice"
    for i in range(1, len(points) + 1):
        with rel.trial():
            for j, d in enumerate(dirs):
                _copy(aside / str(j), d)
            p = _cli(sites, "restore", {"DRSYNC_CRASH_AT": f"*:{i}"})
            assert p.returncode != 0, f"point {i} ({points[i - 1]}) did not kill"
            got = _read(sites, table)
            assert got in (before, after), f"killed at {points[i - 1]} (#{i}): not a complete snapshot"
            p = _cli(sites, "restore")
            assert p.returncode == 0, p.stdout + p.stderr
            assert _read(sites, table) == after, f"re-run after a kill at {points[i - 1]} did not converge"
    return len(points)


def test_restore_killed_at_every_point_of_an_iceberg_apply(sites: Sites, tmp_path: Path,
                                                           reliability: Reliability) -> None:
    rel = reliability("kill -9 during an Iceberg apply", "SIGKILL at each crash point of restore")
    src = sites.primary / "db" / "s" / "ice"
    t = create_dir_table(catalog(sites.base / "scratch-catalog"), "db.ice", src)
    commit(t, lambda t: t.append(batch(10, 3)))
    drsync("backup", "-c", str(sites.config), check=True)  # a first copy
    first = duck_rows(iceduck(), src)
    n = _kill_every_point(sites, tmp_path, rel, None, first)
    commit(t, lambda t: t.overwrite(batch(100, 2)))
    commit(t, lambda t: t.append(batch(200, 2)))
    keep = t.current_snapshot().snapshot_id
    commit(t, lambda t: t.maintenance.expire_snapshots().by_ids(
        [s.snapshot_id for s in t.metadata.snapshots if s.snapshot_id != keep]).commit())
    drsync("backup", "-c", str(sites.config), check=True)  # an incremental set with deletions
    n += _kill_every_point(sites, tmp_path, rel, first, duck_rows(iceduck(), src))
    assert n > 10
