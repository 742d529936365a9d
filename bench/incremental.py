"""Incremental rounds: drsync backup + restore against `rsync -a --delete` of the warehouse.

A primary warehouse of DBS x SCHEMAS x TABLES Delta tables (default 4 x 5 x 10 = 200), each
written as three commits of a few thousand rows with `deltalake.write_deltalake` (snappy
Parquet, the writer's default; `--parquet-codec zstd` for zstd Parquet). Rows are sequential
ids and timestamps, random amounts, a small-dictionary category and a random hex reference,
fresh for every file. Each round appends one new parquet file to 5 tables, then replicates it
with

* drsync, in-process (`run_backup` / `run_restore` with warm imports, as a daemon would),
* drsync, as the CLI (`python -m drsync backup|restore -c CFG`: Python start-up included),
* drsync, in-process with `compression-level=0` (bundles stored, not compressed),
* `rsync -a --delete --stats` of the whole primary warehouse to a directory on this host.

The three drsync site pairs read the same primary warehouse, so every method replicates
exactly the same change. All configs use `barrier-grace=0s`: the grace sleep (default 1 s,
meant for commits in flight) would otherwise dominate every round.

Bytes moved: drsync = bundle bytes (`bundles[].size` of the set's manifest on the primary)
plus the manifest as shipped; rsync = `Total bytes sent` of `--stats`. Both are divided by
the bytes of the parquet files the round added, measured on disk.

Then rounds where nothing changed, compared with `os.scandir` of every table's `_delta_log`.

Run: `.venv/bin/python bench/incremental.py` (or `make bench`); `--help` for options.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import zstandard
from deltalake import WriterProperties, write_deltalake
from rich.console import Console
from rich.table import Table

from drsync.changes import collect_changes
from drsync.config import Settings, load_settings
from drsync.demo import write_config
from drsync.fsutil import rmtree_force
from drsync.primary import load_inventory, run_backup
from drsync.standby import run_restore
from drsync.state import MANIFEST_DIR
from drsync.tableformat.delta import LOG_DIR, list_log
from drsync.warehouse import TableRef, discover_tables

GOAL_BYTES_RATIO = 1.02
CHANGED_PER_ROUND = 5
console = Console(width=120)


# ---------------------------------------------------------------- the warehouse


CATEGORIES = pa.array(["food", "fuel", "rent", "travel", "misc", "tax", "fees", "other"])


@dataclass
class Workload:
    warehouse: Path
    tables: list[TableRef]
    rows: int
    props: WriterProperties
    rng: random.Random = field(default_factory=lambda: random.Random(42))
    written: int = 0  # files written so far: ids continue from file to file

    def batch(self) -> pa.Table:
        """Fresh random values for every file (no file repeats another's columns, which would
        flatter compression across the files of a bundle), built without a per-value loop."""
        n, start = self.rows, self.written * self.rows
        self.written += 1
        raw = pa.py_buffer(self.rng.randbytes(8 * n))
        bits = pa.Array.from_buffers(pa.uint64(), n, [None, raw])
        cents = pc.bit_wise_and(bits, pa.scalar(0xFFFFF, pa.uint64()))  # 0 .. 10485.75
        pick = pc.bit_wise_and(pc.shift_right(bits, pa.scalar(20, pa.uint64())),
                               pa.scalar(7, pa.uint64()))
        refs = self.rng.randbytes(8 * n).hex()
        return pa.table({
            "id": pa.array(range(start, start + n), pa.int64()),
            "ts": pa.array(range(1_700_000_000_000 + start, 1_700_000_000_000 + start + n),
                           pa.int64()),
            "amount": pc.divide(pc.cast(cents, pa.float64()), 100.0),
            "category": CATEGORIES.take(pick),
            "ref": pa.array([refs[i:i + 16] for i in range(0, 16 * n, 16)], pa.string()),
        })

    def append(self, table: TableRef) -> None:
        write_deltalake(str(table.path(self.warehouse)), self.batch(), mode="append",
                        writer_properties=self.props)


def create_warehouse(wl: Workload, commits: int) -> None:
    for table in wl.tables:
        table.path(wl.warehouse).mkdir(parents=True)
    # write_deltalake runs in Rust without the GIL: a few threads fill the tables faster.
    batches = [(t, wl.batch()) for _ in range(commits) for t in wl.tables]
    by_table: dict[TableRef, list[pa.Table]] = {}
    for t, b in batches:
        by_table.setdefault(t, []).append(b)

    def fill(t: TableRef) -> None:
        for b in by_table[t]:
            write_deltalake(str(t.path(wl.warehouse)), b, mode="append",
                            writer_properties=wl.props)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(fill, wl.tables))


def parquet_files(table_dir: Path) -> dict[str, int]:
    return {e.name: e.stat().st_size for e in os.scandir(table_dir)
            if e.is_file() and e.name.endswith(".parquet")}


def tree_bytes(root: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _, names in os.walk(root):
        for n in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, n)).st_size
    return files, size


# ---------------------------------------------------------------- the replicators


@dataclass
class Run:
    backup_s: float
    restore_s: float
    bytes_moved: int
    # drsync only: file bytes packed (raw), bundle bytes (framed, maybe compressed), manifest.
    packed: int = 0
    bundles: int = 0
    manifest: int = 0

    @property
    def total_s(self) -> float:
        return self.backup_s + self.restore_s


@dataclass
class Pair:
    """One primary (metadata + media) and standby, reading the shared primary warehouse."""

    label: str
    base: Path
    config: Path
    settings: Settings
    cli: bool
    runs: list[Run] = field(default_factory=list)

    def manifests(self) -> set[str]:
        d = self.settings.primary_metadata_destination / MANIFEST_DIR
        return {e.name for e in os.scandir(d)} if d.is_dir() else set()

    def round(self) -> Run:
        before = self.manifests()
        if self.cli:
            backup_s = _timed(lambda: _cli("backup", self.config))
            restore_s = _timed(lambda: _cli("restore", self.config))
        else:
            backup_s = _timed(lambda: _check_backup(self.settings))
            restore_s = _timed(lambda: _check_restore(self.settings))
        new = sorted(self.manifests() - before)
        if len(new) != 1:
            raise SystemExit(f"bench: {self.label}: expected one new set, found {new}")
        # Bytes moved: the set's bundles (from the primary's manifest) plus the manifest as
        # shipped (the primary keeps its own copy indented differently).
        primary = self.settings.primary_metadata_destination / MANIFEST_DIR / new[0]
        shipped = self.settings.restore_metadata_destination / MANIFEST_DIR / new[0]
        info = json.loads(primary.read_bytes())["bundles"]
        bundles = sum(b["size"] for b in info)
        manifest = (shipped if shipped.exists() else primary).stat().st_size
        return Run(backup_s, restore_s, bundles + manifest,
                   sum(b["raw_bytes"] for b in info), bundles, manifest)


def make_pair(root: Path, label: str, name: str, warehouse: Path, level: int, cli: bool) -> Pair:
    base = root / name
    (base / "standby" / "warehouse").mkdir(parents=True)
    cfg = write_config(base, grace="0s")
    text = cfg.read_text()
    own = f"primary-warehouse={base / 'primary' / 'warehouse'}\n"
    assert own in text and "compression-level=1\n" in text, "write_config changed its format"
    text = text.replace(own, f"primary-warehouse={warehouse}\n")
    text = text.replace("compression-level=1\n", f"compression-level={level}\n")
    cfg.write_text(text)
    return Pair(label, base, cfg, load_settings(cfg), cli)


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _check_backup(settings: Settings) -> None:
    result = run_backup(settings)
    if result.exit_code != 0 or result.key is None:
        raise SystemExit(f"bench: backup failed: {result.message}")


def _check_restore(settings: Settings) -> None:
    result = run_restore(settings)
    if result.exit_code != 0 or len(result.applied) != 1:
        raise SystemExit(f"bench: restore failed: {result.message}")


def _cli(command: str, config: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "drsync", command, "-c", str(config)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"bench: `drsync {command}` exited {p.returncode}\n{p.stdout}{p.stderr}")


@dataclass
class Rsync:
    source: Path
    target: Path
    runs: list[Run] = field(default_factory=list)
    literal: list[int] = field(default_factory=list)

    def round(self) -> Run:
        cmd = ["rsync", "-a", "--delete", "--stats", f"{self.source}/", f"{self.target}/"]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
        elapsed = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"bench: rsync exited {p.returncode}: {p.stderr}")
        self.literal.append(_stat(p.stdout, "Literal data"))
        return Run(elapsed, 0.0, _stat(p.stdout, "Total bytes sent"))


def _stat(text: str, label: str) -> int:
    m = re.search(rf"^{label}: ([0-9,.]+)", text, re.M)
    if m is None:
        raise SystemExit(f"bench: no '{label}' in rsync --stats output:\n{text}")
    return int(re.sub(r"[^0-9]", "", m[1]))


# ---------------------------------------------------------------- unchanged tables


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of `repeat` runs: the least disturbed by other load on the host."""
    return min(_timed(fn) for _ in range(repeat))


def scandir_logs(logs: list[Path]) -> None:
    for p in logs:
        with os.scandir(p) as it:
            for _ in it:
                pass


def list_logs(dirs: list[Path]) -> None:
    for d in dirs:
        list_log(d)


def collect_pass(settings: Settings) -> None:
    """drsync's per-table work of a backup round, nothing else: discover the tables, read
    each inventory, list each `_delta_log`, decide whether it changed."""
    meta, wh = settings.primary_metadata_destination, settings.primary_warehouse
    barrier_ms = int(time.time() * 1000)
    for t in discover_tables(wh):
        change = collect_changes(t.path(wh), t.name, list_log(t.path(wh)), barrier_ms,
                                 load_inventory(meta, t))
        if change is not None:
            raise SystemExit(f"bench: {t.name} changed in a no-change round")


# ---------------------------------------------------------------- report


def fmt_s(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 10 else f"{s:.1f} s"


def fmt_b(n: float) -> str:
    return f"{n / 1e3:.1f} kB" if n < 1e6 else f"{n / 1e6:.2f} MB"


def verdict(ok: bool) -> str:
    return "[bold green]PASS[/]" if ok else "[bold red]MISS[/]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds with changes (default 5)")
    ap.add_argument("--noop-rounds", type=int, default=5,
                    help="rounds without changes, for the unchanged-table cost (default 5)")
    ap.add_argument("--dbs", type=int, default=4)
    ap.add_argument("--schemas", type=int, default=5)
    ap.add_argument("--tables", type=int, default=10, help="tables per schema")
    ap.add_argument("--rows", type=int, default=3000, help="rows per file (default 3000)")
    ap.add_argument("--commits", type=int, default=3, help="commits per table at start")
    ap.add_argument("--parquet-codec", choices=("snappy", "zstd"), default="snappy",
                    help="compression inside the parquet files (default snappy, the writer's)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="parent for the work directory (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="leave the work directory in place")
    args = ap.parse_args()

    rsync_ok = shutil.which("rsync") is not None
    if not rsync_ok:
        console.print("[bold yellow]rsync not found on PATH: the rsync comparison is skipped. "
                      "Install it with `apt-get install -y rsync` (or `make sysdeps`).[/]")
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="drsync-bench-", dir=args.dir)).resolve()
    try:
        run(args, root, rsync_ok)
    finally:
        if args.keep:
            console.print(f"work directory kept: {root}")
        else:
            rmtree_force(root)


def run(args: argparse.Namespace, root: Path, rsync_ok: bool) -> None:
    started = time.perf_counter()
    warehouse = root / "primary-warehouse"
    tables = [TableRef(f"db{d}", f"s{s}", f"t{t:02d}") for d in range(args.dbs)
              for s in range(args.schemas) for t in range(args.tables)]
    n = len(tables)
    props = WriterProperties(compression=args.parquet_codec.upper())
    wl = Workload(warehouse, tables, args.rows, props)
    console.print(f"[bold]drsync incremental benchmark[/] in {root}\n"
                  f"{n} tables ({args.dbs} dbs x {args.schemas} schemas x {args.tables}), "
                  f"{args.commits} commits x {args.rows} rows each ({args.parquet_codec} parquet); "
                  f"{CHANGED_PER_ROUND} tables "
                  f"get one new file per round; {args.rounds} rounds, then {args.noop_rounds} "
                  f"rounds with no change.\nAll drsync configs: transport=local, "
                  f"parrallel-process=2, [bold]barrier-grace=0s[/] (a production round also "
                  f"sleeps barrier-grace, default 1 s).")
    t0 = time.perf_counter()
    create_warehouse(wl, args.commits)
    files, size = tree_bytes(warehouse)
    console.print(f"warehouse written in {time.perf_counter() - t0:.1f} s: {files} files, "
                  f"{fmt_b(size)}")

    pairs = [
        make_pair(root, "drsync in-process", "inproc", warehouse, level=1, cli=False),
        make_pair(root, "drsync CLI", "cli", warehouse, level=1, cli=True),
        make_pair(root, "drsync in-process, level 0", "inproc-l0", warehouse, level=0, cli=False),
    ]
    rs = Rsync(warehouse, root / "rsync-target") if rsync_ok else None
    initial: dict[str, float] = {}
    for p in pairs:  # the initial full copy: not part of the incremental figures
        initial[p.label] = p.round().total_s
    if rs is not None:
        initial["rsync"] = rs.round().total_s
        rs.literal.clear()
    console.print("initial full copy: " + ", ".join(f"{k} {fmt_s(v)}" for k, v in initial.items()))

    new_bytes: list[int] = []
    zstd_bytes: list[int] = []
    for r in range(args.rounds):
        # Spread the changed tables over databases and schemas; a different set each round.
        step = max(1, n // CHANGED_PER_ROUND)
        changed = [tables[(r * 7 + i * step) % n] for i in range(CHANGED_PER_ROUND)]
        before = {t: parquet_files(t.path(warehouse)) for t in changed}
        for t in changed:
            wl.append(t)
        added = squeezed = 0
        for t in changed:
            now = parquet_files(t.path(warehouse))
            for name in set(now) - set(before[t]):
                added += now[name]
                # What zstd level 1 (compression-level=1) makes of the new Parquet on its own.
                data = (t.path(warehouse) / name).read_bytes()
                squeezed += len(zstandard.ZstdCompressor(level=1).compress(data))
        new_bytes.append(added)
        zstd_bytes.append(squeezed)
        for p in pairs:
            p.runs.append(p.round())
        if rs is not None:
            rs.runs.append(rs.round())

    # Rounds where nothing changed.
    noop: dict[str, list[Run]] = {p.label: [p.round() for _ in range(args.noop_rounds)]
                                  for p in pairs[:2]}
    rsync_noop = [rs.round() for _ in range(args.noop_rounds)] if rs is not None else []
    refs = discover_tables(warehouse)
    logs = [t.path(warehouse) / LOG_DIR for t in refs]
    meta = pairs[0].settings.primary_metadata_destination
    reps = 30
    parts = {  # drsync's per-table work of a no-change round, and its pieces
        "collect": best_time(lambda: collect_pass(pairs[0].settings), reps),
        "discover": best_time(lambda: discover_tables(warehouse), reps),
        "inventory": best_time(lambda: [load_inventory(meta, t) for t in refs], reps),
        "list_log": best_time(lambda: list_logs([t.path(warehouse) for t in refs]), reps),
        "scandir": best_time(lambda: scandir_logs(logs), reps),
    }

    report(args, n, new_bytes, zstd_bytes, pairs, rs, noop, rsync_noop, parts)
    console.print(f"\nbenchmark took {time.perf_counter() - started:.0f} s "
                  f"({platform.node()}, {os.cpu_count()} cores, Python "
                  f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")


def report(args: argparse.Namespace, n: int, new_bytes: list[int], zstd_bytes: list[int],
           pairs: list[Pair],
           rs: Rsync | None, noop: dict[str, list[Run]], rsync_noop: list[Run],
           parts: dict[str, float]) -> None:
    scandir_s, collect_s = parts["scandir"], parts["collect"]
    inproc, cli, level0 = pairs
    tab = Table(title=f"Rounds with {CHANGED_PER_ROUND} of {n} tables changed "
                      "(time = backup + restore; bytes moved ÷ new parquet bytes)")
    tab.add_column("round", justify="right")
    tab.add_column("new bytes", justify="right")
    tab.add_column("drsync\nin-process", justify="right")
    tab.add_column("drsync\nCLI", justify="right")
    tab.add_column("rsync -a\n--delete", justify="right")
    tab.add_column("moved÷new\ndrsync L1", justify="right")
    tab.add_column("moved÷new\ndrsync L0", justify="right")
    tab.add_column("moved÷new\nrsync", justify="right")
    for i, nb in enumerate(new_bytes):
        rr = rs.runs[i] if rs else None
        tab.add_row(
            str(i + 1), fmt_b(nb),
            f"{fmt_s(inproc.runs[i].backup_s)} + {fmt_s(inproc.runs[i].restore_s)}",
            f"{fmt_s(cli.runs[i].backup_s)} + {fmt_s(cli.runs[i].restore_s)}",
            fmt_s(rr.total_s) if rr else "n/a",
            f"{inproc.runs[i].bytes_moved / nb:.3f}", f"{level0.runs[i].bytes_moved / nb:.3f}",
            f"{rr.bytes_moved / nb:.3f}" if rr else "n/a",
        )
    med = statistics.median
    total_new = sum(new_bytes)
    tab.add_section()
    tab.add_row(
        "median", fmt_b(med(new_bytes)),
        f"{fmt_s(med(r.total_s for r in inproc.runs))}",
        f"{fmt_s(med(r.total_s for r in cli.runs))}",
        fmt_s(med(r.total_s for r in rs.runs)) if rs else "n/a",
        f"{sum(r.bytes_moved for r in inproc.runs) / total_new:.3f}",
        f"{sum(r.bytes_moved for r in level0.runs) / total_new:.3f}",
        f"{sum(r.bytes_moved for r in rs.runs) / total_new:.3f}" if rs else "n/a",
    )
    tab.add_row(
        "best", "",
        fmt_s(min(r.total_s for r in inproc.runs)), fmt_s(min(r.total_s for r in cli.runs)),
        fmt_s(min(r.total_s for r in rs.runs)) if rs else "n/a", "", "", "",
    )
    console.print(tab)
    console.print("(level 0 in-process times: median "
                  f"{fmt_s(med(r.total_s for r in level0.runs))}, best "
                  f"{fmt_s(min(r.total_s for r in level0.runs))}; the median row's ratios are "
                  "total moved ÷ total new over all rounds; 'best' is the fastest round, the "
                  "least disturbed by other load on the host)")
    k = len(new_bytes)
    mean_new = total_new / k
    packed = sum(r.packed for r in level0.runs) / k
    b0, m0 = (sum(r.bundles for r in level0.runs) / k, sum(r.manifest for r in level0.runs) / k)
    b1, m1 = (sum(r.bundles for r in inproc.runs) / k, sum(r.manifest for r in inproc.runs) / k)
    console.print(
        f"drsync bytes per round (mean): new parquet {fmt_b(mean_new)}; files packed "
        f"{fmt_b(packed)} (+{fmt_b(packed - mean_new)} of _delta_log files); level 0: bundles "
        f"{fmt_b(b0)} (+{fmt_b(b0 - packed)} tar framing) + manifest {fmt_b(m0)}; level 1: "
        f"bundles {fmt_b(b1)} + manifest {fmt_b(m1)}; zstd level 1 of the new parquet "
        f"files alone: {sum(zstd_bytes) / total_new:.3f} of their size")
    if rs is not None:
        console.print(f"rsync literal data ÷ new bytes: {sum(rs.literal) / total_new:.3f}; the "
                      "rest of 'Total bytes sent' is its file list of the whole warehouse "
                      "(local rsync copies whole files; new files have no basis to delta against)")

    nt = Table(title=f"Rounds with nothing changed ({args.noop_rounds} runs; the lines below "
                     f"the rule: best of 30)")
    nt.add_column("what")
    nt.add_column("median", justify="right")
    nt.add_column("best", justify="right")
    nt.add_column(f"best ÷ {n} tables", justify="right")
    nt.add_column("bytes moved", justify="right")
    noop_inproc = min(r.total_s for r in noop[inproc.label])
    for label, runs in noop.items():
        b, r_ = med(r.backup_s for r in runs), med(r.restore_s for r in runs)
        best = min(r.total_s for r in runs)
        nt.add_row(f"{label} (median backup {fmt_s(b)} + restore {fmt_s(r_)})",
                   fmt_s(med(r.total_s for r in runs)), fmt_s(best), f"{best / n * 1e6:.0f} µs",
                   fmt_b(med(r.bytes_moved for r in runs)))
    if rsync_noop:
        best = min(r.total_s for r in rsync_noop)
        nt.add_row("rsync -a --delete", fmt_s(med(r.total_s for r in rsync_noop)), fmt_s(best),
                   f"{best / n * 1e6:.0f} µs", fmt_b(med(r.bytes_moved for r in rsync_noop)))
    nt.add_section()
    for key, what in (
        ("collect", "drsync's per-table work alone (discover, read inventory, list_log, decide)"),
        ("discover", "  of which discover_tables (walk db/schema/table, is_dir _delta_log)"),
        ("inventory", "  of which load_inventory (one JSON file per table)"),
        ("list_log", "  of which list_log (scandir + stat of every log entry)"),
        ("scandir", "os.scandir of every _delta_log (the yardstick)"),
    ):
        nt.add_row(what, "", fmt_s(parts[key]), f"{parts[key] / n * 1e6:.0f} µs", "")
    console.print(nt)

    worst = max(r.bytes_moved / nb for r, nb in zip(inproc.runs, new_bytes, strict=True))
    worst0 = max(r.bytes_moved / nb for r, nb in zip(level0.runs, new_bytes, strict=True))
    console.print("\n[bold]Goals[/]")
    console.print(f"{verdict(worst <= GOAL_BYTES_RATIO)} bytes moved ÷ new-file bytes "
                  f"≤ {GOAL_BYTES_RATIO}: drsync (default compression-level=1) worst round "
                  f"{worst:.3f}; with compression-level=0 worst round {worst0:.3f} "
                  f"({verdict(worst0 <= GOAL_BYTES_RATIO)})")
    console.print(f"{verdict(noop_inproc <= scandir_s)} an unchanged table costs no more than "
                  f"listing its _delta_log: the fastest no-change round (in-process backup + "
                  f"restore) costs {noop_inproc / scandir_s:.1f}x os.scandir of every _delta_log "
                  f"({noop_inproc / n * 1e6:.0f} vs {scandir_s / n * 1e6:.0f} µs per table)")
    console.print(f"{verdict(collect_s <= scandir_s)} (same goal, per-table work only, fixed "
                  f"per-round costs left out): {collect_s / scandir_s:.1f}x "
                  f"({collect_s / n * 1e6:.0f} vs {scandir_s / n * 1e6:.0f} µs per table)")
    if rs is not None:
        ratio = med(r.total_s for r in rs.runs) / med(r.total_s for r in inproc.runs)
        console.print(f"\nrsync round time ÷ drsync in-process round time (median): {ratio:.2f}; "
                      f"÷ drsync CLI: "
                      f"{med(r.total_s for r in rs.runs) / med(r.total_s for r in cli.runs):.2f}")


if __name__ == "__main__":
    main()
