"""kill -9 at every crash point of a restore that applies Iceberg sets (issue 19): a first copy
and an incremental set (new manifests, manifest list, metadata JSON, pointer; an expiry's
deletions). After each kill the standby table, read by DuckDB's iceberg extension and by
pyiceberg with the primary renamed away, holds exactly the rows of a complete snapshot (the
one before the set or the one after); a re-run converges to the barrier.

Both kinds of table: a directory table (read through its version-hint.text) and a table of a
pyiceberg SQL catalog (read through the standby catalog's row, which must always name a
complete metadata JSON: the row is switched after the pointer, the old metadata removed only
after the row switched)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table

from drsync.fsutil import rmtree_force
from tests.faults.conftest import Reliability, soak
from tests.helpers import Sites, drsync, make_sites
from tests.iceberg_helpers import (
    batch,
    catalog,
    commit,
    create_dir_table,
    duck_rows,
    iceduck,
    py_rows,
    set_hint,
)

pytestmark = pytest.mark.crash


def _cli(sites: Sites, op: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drsync", op, "-c", str(sites.config)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)


def _copy(src: Path, dst: Path) -> None:
    rmtree_force(dst)
    if src.exists():
        shutil.copytree(src, dst, symlinks=True)


Rows = list[tuple[Any, ...]]
Reader = Callable[[], "Rows | None"]


def _primary_away(sites: Sites, read: Callable[[], Rows]) -> Rows:
    away = sites.primary.with_name("warehouse.away")
    os.rename(sites.primary, away)
    try:
        return read()
    finally:
        os.rename(away, sites.primary)


def _dir_reader(sites: Sites, table: Path) -> Reader:
    """Rows by both readers (equal) through version-hint.text; None when no table is there yet."""
    def read() -> Rows | None:
        if not (table / "metadata" / "version-hint.text").exists():
            return None

        def both() -> Rows:
            got = duck_rows(iceduck(), table)
            assert py_rows(table) == got
            return got
        return _primary_away(sites, both)
    return read


def _catalog_reader(sites: Sites, url: str, ident: tuple[str, ...], table: Path) -> Reader:
    """Rows by both readers (equal) through the standby catalog's row; None when it has none."""
    def read() -> Rows | None:
        try:
            t = SqlCatalog("prod", uri=url).load_table(ident)
        except NoSuchTableError:
            return None
        loc = str(t.metadata_location)
        assert Path(loc).parent == table / "metadata" and Path(loc).is_file(), loc

        def both() -> Rows:
            arrow = t.scan().to_arrow()
            got = sorted((tuple(r.values()) for r in arrow.to_pylist()), key=repr)
            q = loc.replace("'", "''")
            duck = iceduck().execute(f"SELECT * FROM iceberg_scan('{q}')").fetchall()
            assert sorted(duck, key=repr) == got
            return got
        return _primary_away(sites, both)
    return read


_GENERIC_RUNS = ("extract.chunk", "delete.file")  # killed at every one by the Delta fault tests


def _kill_points(points: list[str], sample: bool) -> list[int]:
    """The crash points to kill at (1-based): all of them in `make soak`; in `make test` the
    first and last of each run of bundle-extraction chunks and of deletions (generic steps),
    and every other point: each file of the Iceberg install order, each table's apply (the
    catalog row follows it), the barrier, the commit. With `sample` (the first copy, whose
    install order the incremental set repeats) only the first and last hit of each distinct
    point. The suite must stay quick."""
    if soak(False, True):
        return list(range(1, len(points) + 1))
    n = len(points)
    if sample:
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for i, name in enumerate(points, start=1):
            first.setdefault(name, i)
            last[name] = i
        return sorted(set(first.values()) | set(last.values()))
    inner = [1 < i < n and points[i - 2] == points[i - 1] == points[i] for i in range(1, n + 1)]
    return [i for i in range(1, n + 1) if not (inner[i - 1] and points[i - 1] in _GENERIC_RUNS)]


def _kill_every_point(sites: Sites, tmp: Path, rel: Any, readers: list[Reader],
                      before: list[Rows | None], after: list[Rows], extra_dirs: tuple[Path, ...],
                      sample: bool = False) -> int:
    """Kill the restore at each of its crash points in turn; each table (one reader each) must
    hold the snapshot before the set or the one after (tables are applied one by one)."""
    dirs = [sites.standby, sites.standby_meta, *extra_dirs]
    aside = tmp / "aside"
    for i, d in enumerate(dirs):
        _copy(d, aside / str(i))
    counter = tmp / "points"
    counter.unlink(missing_ok=True)
    p = _cli(sites, "restore", {"DRSYNC_CRASH_COUNT": str(counter)})
    assert p.returncode == 0, p.stdout + p.stderr
    points = counter.read_text().split()
    assert any(x == "apply.file" for x in points)
    for i in _kill_points(points, sample):
        with rel.trial():
            for j, d in enumerate(dirs):
                _copy(aside / str(j), d)
            p = _cli(sites, "restore", {"DRSYNC_CRASH_AT": f"*:{i}"})
            assert p.returncode != 0, f"point {i} ({points[i - 1]}) did not kill"
            for k, read in enumerate(readers):
                assert read() in (before[k], after[k]), \
                    f"table {k} killed at {points[i - 1]} (#{i}): not a complete snapshot"
            p = _cli(sites, "restore")
            assert p.returncode == 0, p.stdout + p.stderr
            assert [read() for read in readers] == after, \
                f"re-run after a kill at {points[i - 1]} did not converge"
    return len(points)


def _arrow_rows(t: Table) -> Rows:
    return sorted((tuple(r.values()) for r in t.scan().to_arrow().to_pylist()), key=repr)


def test_restore_killed_at_every_point_of_an_iceberg_apply(tmp_path: Path, reliability: Reliability) -> None:
    """One set with a directory table and a catalog table (one kill loop covers both): a first
    copy, then an incremental set with an overwrite, an append and an expiry in each."""
    rel = reliability("kill -9 during an Iceberg apply",
                      "SIGKILL at each crash point of restore, directory and SQL-catalog tables")
    base = tmp_path / "sites"
    pcat_url = f"sqlite:///{base}/primary/cat.db"
    scat_dir = base / "standby-catalog"
    scat_dir.mkdir(parents=True)
    scat_url = f"sqlite:///{scat_dir}/cat.db"
    sites = make_sites(base, extra=f"primary-iceberg-catalog={pcat_url}\n"
                                   f"standby-iceberg-catalog={scat_url}\niceberg-catalog-name=prod\n")
    src = sites.primary / "db" / "s" / "ice"
    dir_t = create_dir_table(catalog(sites.base / "scratch-catalog"), "db.ice", src)
    pcat = SqlCatalog("prod", uri=pcat_url, warehouse=f"file://{base}/unused")
    pcat.create_namespace("db")
    cat_t = pcat.create_table("db.cat_t", schema=batch(0, 1).schema,
                              location=str(sites.primary / "db" / "s" / "cat_t"))
    readers = [_dir_reader(sites, sites.standby / "db" / "s" / "ice"),
               _catalog_reader(sites, scat_url, ("db", "cat_t"), sites.standby / "db" / "s" / "cat_t")]

    def write(op: Callable[[Table], Any]) -> None:
        commit(dir_t, op)  # the directory table's pointer: version-hint.text
        op(cat_t)  # the catalog table's pointer: its row in the primary's catalog
        cat_t.refresh()

    def current() -> list[Rows]:
        return [duck_rows(iceduck(), src), _arrow_rows(pcat.load_table("db.cat_t"))]

    write(lambda t: t.append(batch(10, 3)))
    drsync("backup", "-c", str(sites.config), check=True)  # a first copy
    first = current()
    n = _kill_every_point(sites, tmp_path, rel, readers, [None, None], first, (scat_dir,), sample=True)
    write(lambda t: t.overwrite(batch(100, 2)))
    write(lambda t: t.append(batch(200, 2)))
    for t in (dir_t, cat_t):
        keep = t.current_snapshot().snapshot_id
        t.maintenance.expire_snapshots().by_ids(
            [s.snapshot_id for s in t.metadata.snapshots if s.snapshot_id != keep]).commit()
        t.refresh()
    set_hint(dir_t)
    drsync("backup", "-c", str(sites.config), check=True)  # an incremental set with deletions
    n += _kill_every_point(sites, tmp_path, rel, readers, list(first), current(), (scat_dir,))
    assert n > 10
    assert not (sites.primary / "db" / "s" / "cat_t" / "metadata" / "version-hint.text").exists()
