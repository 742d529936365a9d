"""kill -9 at every crash point of taking an Iceberg table back to a version (the set-aside of
failover, roles/tablelog.py): after each kill the table reads whole (the version above or the
one it goes back to, by DuckDB and pyiceberg), a re-run converges to that version, and every
file is either still in the table or in a quarantine: nothing is lost."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drsync.roles.tablelog import set_aside_above
from drsync.tableformat.iceberg.metadata import metadata_version
from tests.faults.conftest import Reliability
from tests.iceberg_helpers import (
    batch,
    catalog,
    commit,
    create_dir_table,
    current_metadata,
    duck_rows,
    iceduck,
    py_rows,
)

pytestmark = pytest.mark.crash

NAME = "db.s.ice"
SET_ASIDE = """
import sys
from pathlib import Path
from drsync.roles.tablelog import set_aside_above
print(set_aside_above(Path(sys.argv[1]), "db.s.ice", int(sys.argv[2]), Path(sys.argv[3])).describe())
"""


def _run(table: Path, version: int, quarantine: Path,
         env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SET_ASIDE, str(table), str(version), str(quarantine)],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=120)


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _rows(table: Path) -> list[tuple[Any, ...]]:
    got = duck_rows(iceduck(), table)
    assert py_rows(table) == got, "readers disagree"
    return got


def test_kill_at_every_point_of_an_iceberg_set_aside_converges(tmp_path: Path,
                                                               reliability: Reliability) -> None:
    rel = reliability("kill -9 during an Iceberg set-aside", "DRSYNC_CRASH_AT at every set-aside point")
    pristine = tmp_path / "pristine" / "db" / "s" / "ice"
    t = create_dir_table(catalog(tmp_path / "cat"), "db.ice", pristine)
    keep = metadata_version(current_metadata(pristine).name)
    assert keep is not None
    back = _rows(pristine)
    commit(t, lambda t: t.append(batch(100, 2)))
    commit(t, lambda t: t.overwrite(batch(200, 3)))
    top = _rows(pristine)
    # a manifest no metadata reaches (a set killed before its metadata JSON): set aside too
    orphan = pristine / "metadata" / "orphan-m0.avro"
    shutil.copyfile(next((pristine / "metadata").glob("*-m0.avro")), orphan)
    everything = _files(pristine)

    work, counter = tmp_path / "work", tmp_path / "points"
    shutil.copytree(pristine, work)
    p = _run(work, keep, tmp_path / "q-count", {"DRSYNC_CRASH_COUNT": str(counter)})
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{NAME}: back to version {keep}" in p.stdout and "5 row(s)" in p.stdout, p.stdout
    points = counter.read_text().split()
    assert points[0] == "setaside.repointed" and points.count("setaside.file") >= 4, points
    for n in range(1, len(points) + 1):
        with rel.trial():
            shutil.rmtree(work)
            shutil.copytree(pristine, work)
            q1, q2 = tmp_path / f"q{n}a", tmp_path / f"q{n}b"
            killed = _run(work, keep, q1, {"DRSYNC_CRASH_AT": f"*:{n}"})
            assert killed.returncode == -9, killed.stdout + killed.stderr
            assert _rows(work) in (back, top), f"kill at {points[n - 1]} #{n}: not a whole version"
            set_aside_above(work, NAME, keep, q2)  # the re-run (in this process: no crash point set)
            assert _rows(work) == back
            assert metadata_version(current_metadata(work).name) == keep
            left = _files(work)
            assert not any((metadata_version(f) or -1) > keep for f in left), left
            aside = (_files(q1) if q1.exists() else set()) | (_files(q2) if q2.exists() else set())
            assert left | aside == everything | {"metadata/version-hint.text"}, "a file was lost"
            assert left.isdisjoint(aside - {"metadata/version-hint.text"})
            assert "metadata/orphan-m0.avro" in aside
