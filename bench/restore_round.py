"""The standby's half of an incremental round, alone: `run_restore` of a set of 10 changed tables
out of 1,000, with the fsyncs it makes counted and (with `--profile`) its functions profiled.

The workload is `bench/incremental.py --ssh`'s (one template table of 5 small commits copied to
every table; each round appends one new ~113 kB snappy Parquet file to 10 tables), but the
primary ships with `transport=local` into a standby on this host: the set that reaches the
inbox is the same, and the restore pass that applies it is the same code the standby daemon
and `drsync restore` run. What the agent does over SSH is measured by `incremental.py --ssh`.

Counted: `os.fsync` calls (files and directories alike) and `syncfs` calls (each flushes the
whole filesystem once). Times are wall clock per restore, median of the rounds.

Run: `.venv/bin/python bench/restore_round.py [--rounds 8] [--profile]`.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deltalake import WriterProperties

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.incremental import (
    Workload,
    append_round,
    create_warehouse_by_copy,
    make_pair,
    pick_changed,
)
from drsync import fsutil
from drsync.primary.round import run_backup
from drsync.site.warehouse import TableRef
from drsync.standby.restore import run_restore


class Counter:
    """Counts os.fsync and syncfs calls while installed (both sides of this process)."""

    def __init__(self) -> None:
        self.fsyncs = 0
        self.syncfs = 0

    @contextmanager
    def installed(self) -> Iterator[Counter]:
        real_fsync, real_sync_fs = os.fsync, fsutil.sync_filesystem

        def fsync(fd: Any) -> None:
            self.fsyncs += 1
            real_fsync(fd)

        def sync_fs(path: Path) -> None:
            self.syncfs += 1
            real_sync_fs(path)

        # sync_filesystem is imported by name: patched in every module holding it.
        holders = [m for m in list(sys.modules.values())
                   if getattr(m, "sync_filesystem", None) is real_sync_fs]
        os.fsync = fsync
        for m in holders:
            m.sync_filesystem = sync_fs  # type: ignore[attr-defined]
        try:
            yield self
        finally:
            os.fsync = real_fsync
            for m in holders:
                m.sync_filesystem = real_sync_fs  # type: ignore[attr-defined]


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--tables", type=int, default=10, help="tables per schema (10 dbs x 10 schemas)")
    ap.add_argument("--changed", type=int, default=10)
    ap.add_argument("--profile", action="store_true", help="profile one more restore with cProfile")
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="drsync-restore-round-", dir=args.dir))
    warehouse = root / "primary-warehouse"
    tables = [TableRef(f"db{d}", f"s{s}", f"t{t:02d}") for d in range(10) for s in range(10)
              for t in range(args.tables)]
    wl = Workload(warehouse, tables, 3000, WriterProperties(compression="SNAPPY"))
    create_warehouse_by_copy(wl, 5, 200)
    pair = make_pair(root, "local", "pair", warehouse, 1, False)
    settings = pair.settings

    def one_round(r: int) -> tuple[float, float, Counter]:
        append_round(wl, pick_changed(tables, r, args.changed))
        os.sync()
        backup = timed(lambda: run_backup(settings))
        os.sync()  # the backup's writes must not be flushed by the restore's first fsync
        with Counter().installed() as c:
            restore = timed(lambda: run_restore(settings))
        return backup, restore, c

    t0 = time.perf_counter()
    run_backup(settings)
    run_restore(settings)
    print(f"{len(tables)} tables; initial copy {time.perf_counter() - t0:.1f} s; "
          f"load average {os.getloadavg()[0]:.2f}")
    results = [one_round(r) for r in range(args.rounds)]
    for i, (b, r, c) in enumerate(results):
        print(f"round {i + 1}: backup {b * 1000:.0f} ms, restore {r * 1000:.0f} ms, "
              f"{c.fsyncs} fsync + {c.syncfs} syncfs")
    print(f"restore median {statistics.median(r for _, r, _ in results) * 1000:.0f} ms, "
          f"best {min(r for _, r, _ in results) * 1000:.0f} ms; fsync per restore "
          f"{statistics.median(c.fsyncs for _, _, c in results):.0f}, syncfs "
          f"{statistics.median(c.syncfs for _, _, c in results):.0f}; "
          f"load average {os.getloadavg()[0]:.2f}")
    if args.profile:
        append_round(wl, pick_changed(tables, args.rounds, args.changed))
        run_backup(settings)
        os.sync()
        prof = cProfile.Profile()
        prof.enable()
        run_restore(settings)
        prof.disable()
        for key, limit in (("tottime", 20), ("cumulative", 35)):
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out)
            stats.sort_stats(key).print_stats(limit)
            text = out.getvalue()
            print(text[text.index("ncalls") - 1:] if "ncalls" in text else text)
    fsutil.rmtree_force(root)


if __name__ == "__main__":
    main()
