"""Drill fork of an Iceberg table: `drsync drill start` against `cp -r` and `cp -al`.

One table written by pyiceberg (SNAPSHOTS appends of ROWS rows), replicated in-process
(backup + restore, so the standby holds its rewritten copy), then forked RUNS times each into
a fresh directory beside the standby warehouse, after an `os.sync`:

* drsync, in-process: `start_drill` (metadata, manifest lists and manifests copied and
  rewritten to the fork's location, data files hard-linked, one syncfs, rename into place),
* `cp -r` and `cp -al` of the table directory: NOT usable forks: their metadata still names
  the standby's paths, so a reader reads (and a writer adds to) the standby's table.

Each fork is then read by DuckDB with the standby warehouse renamed away: drsync's reads
equal, the copies do not read at all.

    .venv/bin/python -m bench.iceberg_drill [--snapshots 50] [--rows 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench.iceberg import local_sites, snapshot_table
from drsync.fsutil import rmtree_force
from drsync.primary.round import run_backup
from drsync.roles.drill import drop_drill, start_drill
from drsync.standby.restore import run_restore
from tests.iceberg_helpers import duck_rows, iceduck


def _timed(runs: int, make: Callable[[Path], None], base: Path, label: str) -> tuple[list[float], Path]:
    took, last = [], base / f"{label}-0"
    for i in range(runs):
        last = base / f"{label}-{i}"
        os.sync()
        t0 = time.perf_counter()
        make(last)
        took.append(time.perf_counter() - t0)
    return took, last


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapshots", type=int, default=50)
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    root, settings = local_sites("drsync-bench-icedrill-")
    src = root / "primary" / "warehouse" / "db" / "s" / "ice"
    dst = root / "standby" / "warehouse" / "db" / "s" / "ice"
    snapshot_table(root, src, args.snapshots, args.rows)
    assert run_backup(settings).exit_code == 0 and run_restore(settings).exit_code == 0
    files = [p for p in dst.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    print(f"standby table: {args.snapshots} snapshots, {len(files)} files, {total / 1e3:.1f} kB")
    forks = root / "forks"
    forks.mkdir()
    written: dict[str, int] = {}

    def drill(into: Path) -> None:
        rec = start_drill(settings, into.name, into, say=lambda _: None)
        written["drsync"] = rec.log_bytes + rec.copied_bytes

    results = {"drsync (in-process)": _timed(args.runs, drill, forks, "d"),
               "cp -r": _timed(args.runs, lambda d: subprocess.run(["cp", "-r", str(dst), str(d)],
                                                                   check=True), forks, "r"),
               "cp -al": _timed(args.runs, lambda d: subprocess.run(["cp", "-al", str(dst), str(d)],
                                                                    check=True), forks, "l")}
    con = iceduck()
    expected = duck_rows(con, dst)
    away = settings.standby_warehouse.with_name("warehouse.away")
    os.rename(settings.standby_warehouse, away)
    try:
        reads: dict[str, str] = {}
        for label, (_, last) in results.items():
            table = last / "db" / "s" / "ice" if label.startswith("drsync") else last
            try:
                reads[label] = "equal" if duck_rows(con, table) == expected else "DIFFERS"
            except Exception as e:  # the copies name the standby's paths, renamed away
                reads[label] = f"unreadable ({type(e).__name__})"
    finally:
        os.rename(away, settings.standby_warehouse)
    print(f"{'method':<22} {'median ms':>10} {'min ms':>8}  bytes written   standby away")
    for label, (took, _) in results.items():
        wrote = f"{written['drsync'] / 1e3:.1f} kB" if label.startswith("drsync") else \
            (f"{total / 1e3:.1f} kB" if label == "cp -r" else "0 (links)")
        print(f"{label:<22} {statistics.median(took) * 1000:>10.0f} {min(took) * 1000:>8.0f}  "
              f"{wrote:<14}  {reads[label]}")
    for i in range(args.runs):
        drop_drill(settings, f"d-{i}", say=lambda _: None)
    rmtree_force(root)


if __name__ == "__main__":
    main()
