"""Kill the restore at every crash point of a set that replaces a re-created table, moves a
renamed one and drops a desynchronised one (drop-desync-table): after every kill each table
is readable as the old table or the new one, never a mix; a re-run converges."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from drsync.fsutil import rmtree_force
from tests.faults.conftest import Reliability
from tests.helpers import Sites, drsync, duck, rows

pytestmark = pytest.mark.crash


def _cli(sites: Sites, *args: str, env: dict[str, str] | None = None) -> str:
    p = drsync(*args, "-c", str(sites.config), env=env, timeout=120)
    assert p.returncode == 0, f"{args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout + p.stderr


def _w(path: Path, values: list[int], mode: str = "append") -> None:
    write_deltalake(str(path), pa.table({"a": values}), mode=mode)  # type: ignore[arg-type]


def _files(table: Path) -> list[str]:
    return sorted(str(p.relative_to(table)) for p in table.rglob("*") if p.is_file())


def _membership_round(sites: Sites) -> tuple[list[tuple[object, ...]], list[str]]:
    """Replicate three tables, then on the primary: re-create one, move one, drop one.
    Returns the re-created table's rows and files."""
    with open(sites.config, "a") as f:
        # The drop is intended here (1 of 3 tables): no desync-guard confirmation in every run.
        f.write("desync-table-operation=drop-desync-table\ndesync-guard=N/A\n")
    p = sites.primary
    for v in ([1], [2], [3]):
        _w(p / "db" / "s" / "re", v)
    _w(p / "db" / "s" / "mv", [5])
    _w(p / "db" / "s" / "gone", [6])
    _cli(sites, "backup")
    _cli(sites, "restore")
    old_re = (rows(duck(), sites.standby / "db" / "s" / "re"), _files(sites.standby / "db" / "s" / "re"))
    shutil.rmtree(p / "db" / "s" / "re")
    _w(p / "db" / "s" / "re", [10, 11])
    (p / "db" / "t").mkdir()
    os.rename(p / "db" / "s" / "mv", p / "db" / "t" / "mv")
    _w(p / "db" / "t" / "mv", [7])
    shutil.rmtree(p / "db" / "s" / "gone")
    return old_re


def _assert_converged(sites: Sites, new_re: object, what: str) -> None:
    s, con = sites.standby, duck()
    re = s / "db" / "s" / "re"
    assert (rows(con, re), _files(re)) == new_re, what
    assert rows(con, s / "db" / "t" / "mv") == [(5,), (7,)], what
    assert not (s / "db" / "s" / "mv").exists() and not (s / "db" / "s" / "gone").exists(), what
    assert not [x for x in (s / "db" / "s").iterdir() if x.name.startswith(".")], what


def test_restore_killed_at_every_membership_point(sites: Sites, tmp_path: Path,
                                                  reliability: Reliability) -> None:
    rel = reliability("kill -9 of restore during membership changes",
                      "SIGKILL at every crash point of a restore whose set replaces a re-created table, "
                      "moves a renamed one and drops a desynchronised one; DuckDB read, then re-run")
    p, s = sites.primary, sites.standby
    old_re = _membership_round(sites)
    out = _cli(sites, "backup")
    assert "re-created" in out and "moved: db.s.mv -> db.t.mv" in out and "db.s.gone" in out
    new_re = (rows(duck(), p / "db" / "s" / "re"), _files(p / "db" / "s" / "re"))

    aside = tmp_path / "standby-before"
    shutil.copytree(sites.base / "standby", aside, symlinks=True)
    counter = tmp_path / "points"
    _cli(sites, "restore", env={"DRSYNC_CRASH_COUNT": str(counter)})
    points = counter.read_text().split()
    for name in ("restore.replace_built", "restore.replace_swapped", "restore.renamed",
                 "restore.desync_dropped"):
        assert name in points, points
    con = duck()
    for i in range(1, len(points) + 1):
        what = f"killed at {i}/{len(points)} ({points[i - 1]})"
        rmtree_force(sites.base / "standby")
        shutil.copytree(aside, sites.base / "standby", symlinks=True)
        with rel.trial():
            k = drsync("restore", "-c", str(sites.config), env={"DRSYNC_CRASH_AT": f"*:{i}"}, timeout=120)
            assert k.returncode == -signal.SIGKILL, f"{what}: {k.stdout}{k.stderr}"
            re = s / "db" / "s" / "re"
            seen = (rows(con, re), _files(re))
            assert seen in (old_re, new_re), f"{what}: re-created table is neither old nor new: {seen}"
            moved = [d for d in (s / "db" / "s" / "mv", s / "db" / "t" / "mv") if d.exists()]
            assert len(moved) == 1 and rows(con, moved[0]) in ([(5,)], [(5,), (7,)]), what
            _cli(sites, "restore")
            _assert_converged(sites, new_re, what)


def test_backup_killed_at_every_membership_point(sites: Sites, tmp_path: Path,
                                                 reliability: Reliability) -> None:
    """A kill anywhere in the round that carries the re-creation, move and drop: the next
    round (and restore) still converges: the table replaced whole, moved, dropped."""
    rel = reliability("kill -9 of backup during membership changes",
                      "SIGKILL at every crash point of a round that carries a re-created, a moved and "
                      "a dropped table; restore what arrived, then another round converges")
    _membership_round(sites)
    p = sites.primary
    new_re = (rows(duck(), p / "db" / "s" / "re"), _files(p / "db" / "s" / "re"))
    aside = tmp_path / "before"
    shutil.copytree(sites.base, aside, symlinks=True)
    counter = tmp_path / "points"
    _cli(sites, "backup", env={"DRSYNC_CRASH_COUNT": str(counter)})
    points = counter.read_text().split()
    assert "backup.inventory_moved" in points and "backup.inventory_forgotten" in points, points
    for i in range(1, len(points) + 1):
        what = f"backup killed at {i}/{len(points)} ({points[i - 1]})"
        for side in ("primary", "standby"):
            rmtree_force(sites.base / side)
            shutil.copytree(aside / side, sites.base / side, symlinks=True)
        with rel.trial():
            k = drsync("backup", "-c", str(sites.config), env={"DRSYNC_CRASH_AT": f"*:{i}"}, timeout=120)
            assert k.returncode == -signal.SIGKILL, f"{what}: {k.stdout}{k.stderr}"
            _cli(sites, "restore")  # whatever reached the inbox applies
            _cli(sites, "backup")
            _cli(sites, "restore")
            _assert_converged(sites, new_re, what)
