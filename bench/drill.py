"""Drill fork speed: `drsync drill start` of 1,000 small tables against `cp -r` and `cp -al`.

A standby warehouse of DBS x SCHEMAS x TABLES Delta tables (default 10 x 10 x 10 = 1,000):
one template table written with `deltalake.write_deltalake` (COMMITS commits of ROWS rows,
snappy Parquet), copied to every table, its files made read-only as drsync's replicated
tables are (0444 files, 0555 directories), plus a barrier map naming every table at the
template's last version, as a restore pass publishes it. Then, RUNS times each, after an
`os.sync`, into a fresh directory beside the warehouse:

* drsync, in-process: `drsync.roles.drill.start_drill` (warm imports, as a long-running tool),
* drsync, as the CLI: `python -m drsync drill start NAME --into DIR -c CFG` (start-up included),
* `cp -r` of the 1,000 table directories (a full copy), and the same followed by `sync` (drsync
  flushes its fork with one `syncfs` before renaming it into place; plain `cp` flushes nothing),
* `cp -al` of them (hard links for every file, log included: NOT a usable fork, since a
  writer appending to a linked log would write into the replicated table's inode; shown as
  the floor for "link everything").

Bytes written: drsync = log bytes copied (the drill record's `log_bytes`) and data bytes
copied (`copied_bytes`, must be 0); cp -r = every file's bytes; cp -al = 0 file bytes. The
drsync fork is checked: a sample of tables read by DuckDB equal to the standby.

Run: `.venv/bin/python bench/drill.py [--dbs 10 --schemas 10 --tables 10 --runs 3]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from drsync.config import load_settings  # noqa: E402
from drsync.demo import write_config  # noqa: E402
from drsync.fsutil import RO_DIR, RO_FILE, atomic_write_json, set_tree_mode  # noqa: E402
from drsync.roles.drill import DrillRecord, drop_drill, start_drill  # noqa: E402
from drsync.standby.restore import barrier_dir  # noqa: E402
from tests.helpers import duck, rows  # noqa: E402


def build_standby(base: Path, dbs: int, schemas: int, tables: int, commits: int, n_rows: int) -> list[str]:
    template = base / "template"
    for c in range(commits):
        ids = list(range(c * n_rows, (c + 1) * n_rows))
        write_deltalake(str(template), pa.table({"id": pa.array(ids, pa.int64()),
                                                 "note": pa.array([f"r{i}" for i in ids])}),
                        mode="append")
    wh = base / "standby" / "warehouse"
    names = []
    for d in range(dbs):
        for s in range(schemas):
            for t in range(tables):
                name = f"db{d}.s{s}.t{t}"
                shutil.copytree(template, wh / f"db{d}" / f"s{s}" / f"t{t}")
                names.append(name)
    for d in range(dbs):
        set_tree_mode(wh / f"db{d}", RO_DIR, RO_FILE)
    (base / "primary" / "warehouse").mkdir(parents=True)
    atomic_write_json(barrier_dir(wh) / "20260101_000000.json", {n: commits - 1 for n in names})
    return names


def tree_bytes(root: Path) -> tuple[int, int]:
    """(bytes of files with one link, i.e. written; files)."""
    written = files = 0
    for dirpath, _, names in os.walk(root):
        for n in names:
            st = os.lstat(os.path.join(dirpath, n))
            files += 1
            if st.st_nlink == 1:
                written += st.st_size
    return written, files


def timed(fn: Callable[[], object]) -> float:
    os.sync()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dbs", type=int, default=10)
    ap.add_argument("--schemas", type=int, default=10)
    ap.add_argument("--tables", type=int, default=10)
    ap.add_argument("--commits", type=int, default=5)
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--base", type=Path, default=None, help="work directory (default: a temp dir)")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="drsync-bench-drill-", dir=args.base))
    try:
        t0 = time.perf_counter()
        names = build_standby(base, args.dbs, args.schemas, args.tables, args.commits, args.rows)
        cfg = write_config(base, publish_all=False)
        settings = load_settings(cfg)
        wh = settings.standby_warehouse
        src_bytes, src_files = tree_bytes(wh)
        print(f"standby: {len(names)} tables, {src_files} files, {src_bytes / 1e6:.1f} MB "
              f"(built in {time.perf_counter() - t0:.1f} s)")
        out = base / "forks"
        out.mkdir()
        dbs = [wh / f"db{d}" for d in range(args.dbs)]
        results: dict[str, list[float]] = {"drsync (in-process)": [], "drsync (CLI)": [],
                                           "cp -r": [], "cp -r; sync": [], "cp -al": []}
        written: dict[str, tuple[int, int]] = {}
        for run in range(args.runs):
            name = f"r{run}"
            made: list[DrillRecord] = []

            def inproc(name: str = name, made: list[DrillRecord] = made) -> None:
                made.append(start_drill(settings, name, out / name, say=lambda _: None))

            results["drsync (in-process)"].append(timed(inproc))
            written["drsync (in-process)"] = (made[0].log_bytes, made[0].copied_bytes)
            if run == 0:
                con = duck()
                for n in names[:: max(1, len(names) // 20)]:
                    rel = n.replace(".", "/")
                    assert rows(con, out / name / rel) == rows(con, wh / rel), n
            drop_drill(settings, name, say=lambda _: None)

            cli = f"c{run}"

            def via_cli(cli: str = cli) -> None:
                subprocess.run([sys.executable, "-m", "drsync", "drill", "start", cli, "--into",
                                str(out / cli), "-c", str(cfg)], check=True, capture_output=True)

            results["drsync (CLI)"].append(timed(via_cli))
            drop_drill(settings, cli, say=lambda _: None)

            for label, flags, sync in (("cp -r", "-r", False), ("cp -r; sync", "-r", True),
                                       ("cp -al", "-al", False)):
                dest = out / f"{label.replace(' ', '').replace(';', '')}{run}"
                dest.mkdir()

                def copy(flags: str = flags, dest: Path = dest, sync: bool = sync) -> None:
                    subprocess.run(["cp", flags, *map(str, dbs), str(dest)], check=True)
                    if sync:
                        os.sync()  # drsync flushes its fork before renaming it into place

                results[label].append(timed(copy))
                written[label] = (tree_bytes(dest)[0], 0)
                subprocess.run(["rm", "-rf", str(dest)], check=True)
        print(f"\n{'method':22} {'median s':>9} {'min s':>7} {'tables/s':>9} {'bytes written':>14}")
        for label, times in results.items():
            med = statistics.median(times)
            w = written.get(label, written["drsync (in-process)"])
            extra = f" (log {w[0] / 1e6:.2f} MB, data copied {w[1]} B)" if label.startswith("drsync") else ""
            print(f"{label:22} {med:9.2f} {min(times):7.2f} {len(names) / med:9.0f} "
                  f"{w[0] / 1e6:11.2f} MB{extra}")
        print(json.dumps({k: [round(t, 3) for t in v] for k, v in results.items()}))
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
