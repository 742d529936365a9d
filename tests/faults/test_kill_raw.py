"""Kill backup and restore at the first and last hit of every crash point of a set whose data
files travel as they are (rawfile.py: linked into the set, into staging, renamed into the table), and
prove the next runs converge: the table equal to the primary's by DuckDB, `verify --deep`
passes, no staging left, and the primary's table files untouched by the kills.

Both a table's first copy (its log built aside, renamed in) and a later set into an existing
table (data files renamed in one by one before the commit that names them) are killed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from drsync.site.layout import WarehouseLayout
from tests.faults.test_kill import _cli, _count_points, _out, _reset, _save
from tests.helpers import Sites, duck, rows
from tests.integration.test_ssh import big_table

pytestmark = pytest.mark.crash
TABLE = ("big", "raw", "blobs")


def _digests(table: Path) -> dict[str, str]:
    return {p.relative_to(table).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(table.rglob("*")) if p.is_file()}


def _converged(sites: Sites, primary_files: dict[str, str], deep: bool) -> None:
    for op in ("backup", "restore"):
        p = _cli(sites, op)
        assert p.returncode == 0, _out(p)
    table = sites.primary.joinpath(*TABLE)
    assert _digests(table) == primary_files  # no kill touched the primary's files
    assert rows(duck(), sites.standby.joinpath(*TABLE)) == rows(duck(), table)
    if deep:
        v = _cli(sites, "verify", "--deep")
        assert v.returncode == 0, _out(v)
    staging = WarehouseLayout(sites.standby).staging
    assert not staging.exists() or not any(staging.iterdir())


@pytest.mark.parametrize("round_", ["first copy", "later set"])
@pytest.mark.parametrize("op", ["backup", "restore"])
def test_kill_at_every_point_of_a_raw_set(sites: Sites, tmp_path: Path, op: str, round_: str) -> None:
    if round_ == "later set":
        big_table(sites.primary, mb=2, files=1)
        for first in ("backup", "restore"):
            assert _cli(sites, first).returncode == 0
    big_table(sites.primary, mb=4, files=2)  # two files of ~2 MiB: raw bundles
    if op == "restore":
        assert _cli(sites, "backup").returncode == 0
    dirs = [sites.base]
    aside = tmp_path / "aside"
    _save(dirs, aside)
    points = _count_points(sites, op, tmp_path)
    assert "restore.raw_staged" in points if op == "restore" else "raw.placed" in points, points
    primary_files = _digests(sites.primary.joinpath(*TABLE))
    # The first and the last hit of every point (a point repeats per chunk and per file).
    chosen = sorted({points.index(n) + 1 for n in points}
                    | {len(points) - points[::-1].index(n) for n in points})
    for i in chosen:
        _reset(dirs, aside)
        p = _cli(sites, op, env={"DRSYNC_CRASH_AT": f"*:{i}"})
        assert p.returncode == -9, f"point {i} ({points[i - 1]}): {_out(p)}"
        if op == "restore" and sites.standby.joinpath(*TABLE, "_delta_log").exists():
            rows(duck(), sites.standby.joinpath(*TABLE))  # readable at whatever version it shows
        try:
            _converged(sites, primary_files, deep=i == chosen[-1])
        except AssertionError as e:
            raise AssertionError(f"killed {op} at point {i} ({points[i - 1]}): {e}") from None
