"""Iceberg position-delete rewrite: drsync's streaming rewrite against two ad hoc rewrites.

A position-delete file of ROWS rows (default 2,000,000) in row groups of 100,000, naming 2,000
data files under /srv/primary/warehouse/db/events (paths of ~95 bytes, as Spark writes them),
ZSTD like Spark's. Each method rewrites `file_path` to /srv/standby/warehouse/db/events:

* drsync: `deletefiles.rewrite_position_deletes` (row group by row group, each distinct path
  rebased once, temp + fsync + rename);
* adhoc-python: read the whole table, rebase each path in Python (`str` replace), write it;
* adhoc-arrow: read the whole table, `pyarrow.compute.replace_substring` on the column, write.

The adhoc methods check nothing (no refusal of paths leaving the table, no fsync), so they are
a lower bound of what a script does. Prints, for each method, the median and best of REPEAT
in-process runs, and Arrow's peak allocation in a fresh process per method.

    .venv/bin/python bench/iceberg_deletes.py [--rows N] [--repeat R]
    .venv/bin/python bench/iceberg_deletes.py --one drsync   # one rewrite (for an outside timer)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from drsync.tableformat.iceberg.deletefiles import FILE_PATH_FIELD_ID, rewrite_position_deletes

OLD = "/srv/primary/warehouse/db/events"
NEW = "/srv/standby/warehouse/db/events"
GROUP = 100_000


def make_file(path: Path, rows: int) -> None:
    schema = pa.schema([
        pa.field("file_path", pa.string(), nullable=False,
                 metadata={b"PARQUET:field_id": str(FILE_PATH_FIELD_ID).encode()}),
        pa.field("pos", pa.int64(), nullable=False, metadata={b"PARQUET:field_id": b"2147483545"}),
    ], metadata={b"delete-type": b"position"})
    files = 2000
    per_file = max(1, rows // files)
    names = pa.array([f"{OLD}/data/00{i:03d}-7-3e88ec3a-0596-440f-9ce6-3debf172be49-00001.parquet"
                      for i in range(files)])
    with pq.ParquetWriter(path, schema, compression="zstd") as w:
        for start in range(0, rows, GROUP):
            n = min(GROUP, rows - start)
            idx = pa.array([(start + i) // per_file % files for i in range(n)], pa.int32())
            pos = pa.array([(start + i) % per_file for i in range(n)], pa.int64())
            w.write_table(pa.table({"file_path": names.take(idx), "pos": pos}, schema=schema))


def adhoc_python(src: Path, dst: Path) -> None:
    t = pq.read_table(src)
    paths = [p.replace(OLD, NEW, 1) for p in t.column("file_path").to_pylist()]
    t = t.set_column(0, t.schema.field(0), pa.array(paths, pa.string()))
    pq.write_table(t, dst, compression="zstd")


def adhoc_arrow(src: Path, dst: Path) -> None:
    t = pq.read_table(src)
    col = pc.replace_substring(t.column("file_path"), OLD, NEW, max_replacements=1)
    t = t.set_column(0, t.schema.field(0), col)
    pq.write_table(t, dst, compression="zstd")


def drsync(src: Path, dst: Path) -> None:
    rewrite_position_deletes(src, dst, OLD, NEW)


METHODS: dict[str, Callable[[Path, Path], None]] = {
    "drsync": drsync, "adhoc-python": adhoc_python, "adhoc-arrow": adhoc_arrow}


def check(dst: Path, rows: int) -> None:
    t = pq.read_table(dst)
    assert t.num_rows == rows
    assert pc.all(pc.starts_with(t.column("file_path"), NEW + "/data/")).as_py()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--one", choices=sorted(METHODS), help="one rewrite of the cached file")
    ap.add_argument("--peak", choices=sorted(METHODS), help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "drsync-bench-iceberg")
    a = ap.parse_args()
    a.dir.mkdir(parents=True, exist_ok=True)
    src = a.dir / f"deletes-{a.rows}.parquet"
    if not src.exists():
        make_file(src, a.rows)
    dst = a.dir / "out.parquet"
    if a.one or a.peak:
        METHODS[a.one or a.peak](src, dst)
        if a.peak:
            print(json.dumps({"peak": pa.default_memory_pool().max_memory()}))
        return
    print(f"position-delete file: {a.rows} rows, {src.stat().st_size / 1e6:.1f} MB on disk "
          f"(ZSTD, row groups of {GROUP}), {pq.read_table(src).nbytes / 1e6:.0f} MB decoded")
    print(f"{'method':<14}{'median ms':>10}{'best ms':>9}{'arrow peak MB':>15}")
    for name, fn in METHODS.items():
        times = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            fn(src, dst)
            times.append((time.perf_counter() - t0) * 1000)
        check(dst, a.rows)
        p = subprocess.run([sys.executable, __file__, "--rows", str(a.rows), "--dir", str(a.dir),
                            "--peak", name], capture_output=True, text=True, check=True)
        peak = json.loads(p.stdout)["peak"] / 1e6
        print(f"{name:<14}{statistics.median(times):>10.0f}{min(times):>9.0f}{peak:>15.1f}")


if __name__ == "__main__":
    main()
