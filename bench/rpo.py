"""RPO under steady writes: both daemons running, 50 tables written continuously.

For each setting, a fresh pair of sites on this host (transport=local, default barrier-grace=1s,
parrallel-process=2, compression-level=1) with TABLES Delta tables, then:

* a writer thread appends one small Parquet file (one commit, `write_deltalake(mode="append")`)
  to a random table every PERIOD/TABLES seconds, so each table gets a commit every ~PERIOD s
  (default 50 tables, 5 s: 10 commits/s in all);
* `python -m drsync daemon --role primary` and `--role standby` run as subprocesses, started
  at the same moment, each serving /metrics on a free port of 127.0.0.1;
* once the first set is restored, the standby's /metrics is polled every second for MINUTES
  and `drsync_rpo_seconds` recorded (both daemons compute it from the same state files).

`--only continuous`: replication-mode=continuous, RPO measured per commit on the standby
(bench/rpo_continuous.py). Settings: the default interval (backup-exec-time-interval=1m,
restore-interval=1m), the config minimum (10s, with restore-interval=5s), and `--tick` values:
a hidden, TEST-ONLY daemon option running every job every S seconds, below the configurable
minimum (not something to run in production). Goal: p99 <= backup interval + 30 s.

    .venv/bin/python bench/rpo.py              # 3 minutes per setting (about 12 minutes)
    .venv/bin/python bench/rpo.py --quick      # 1 minute per setting, a check
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import httpx
import pyarrow as pa
from deltalake import write_deltalake
from rpo_continuous import report as continuous_report
from rpo_continuous import run_continuous

from drsync.demo import write_config
from drsync.fsutil import rmtree_force


@dataclass
class Setting:
    label: str
    interval_s: float  # the backup interval the goal is measured against
    extra: str
    tick: float | None = None


@dataclass
class Result:
    setting: Setting
    samples: list[float] = field(default_factory=list)
    commits: int = 0
    write_errors: int = 0
    seconds: float = 0.0
    warmup_s: float = 0.0
    backup_mean_s: float = math.nan
    restore_mean_s: float = math.nan
    note: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    """Nearest rank."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return math.nan


def small_file(start: int, n: int = 20) -> pa.Table:
    ids = list(range(start, start + n))
    return pa.table({"id": pa.array(ids, pa.int64()), "amount": pa.array([i * 0.5 for i in ids]),
                     "note": pa.array([f"row {i}" for i in ids])})


class Writer(threading.Thread):
    """One commit to a random table every `every` seconds, on a fixed clock (no catch-up bursts)."""

    def __init__(self, tables: list[Path], every: float) -> None:
        super().__init__(daemon=True)
        self.tables, self.every = tables, every
        self.stop = threading.Event()
        self.commits = self.errors = 0
        self.last_error = ""

    def run(self) -> None:
        rng = random.Random(7)
        nxt = time.monotonic()
        while not self.stop.is_set():
            try:
                write_deltalake(str(rng.choice(self.tables)), small_file(self.commits * 100), mode="append")
                self.commits += 1
            except Exception as e:  # keep writing; counted and reported
                self.errors += 1
                self.last_error = f"{type(e).__name__}: {e}"
            nxt += self.every
            delay = nxt - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            else:
                nxt = time.monotonic()  # behind: do not burst


class Daemon:
    def __init__(self, config: Path, role: str, port: int, tick: float | None, logdir: Path) -> None:
        self.role = role
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
        cmd = [sys.executable, "-m", "drsync", "daemon", "-c", str(config), "--role", role]
        if tick:
            cmd += ["--tick", str(tick)]
        self.log = logdir / f"{role}.stderr"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err,
                                         env={k: v for k, v in os.environ.items() if k != "DRSYNC_DEBUG"})

    def metrics(self) -> str:
        return self.http.get("/metrics").text

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.http.close()


def wait_for(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


def run_setting(setting: Setting, minutes: float, tables: int, period: float) -> Result:
    result = Result(setting)
    base = Path(tempfile.mkdtemp(prefix="drsync-rpo-"))
    daemons: list[Daemon] = []
    writer: Writer | None = None
    try:
        wh = base / "primary" / "warehouse"
        (base / "standby" / "warehouse").mkdir(parents=True)
        paths = [wh / f"db{i // 10}" / "public" / f"t{i:02d}" for i in range(tables)]
        for i, p in enumerate(paths):
            write_deltalake(str(p), small_file(i * 1_000_000))
        p_port, s_port = free_port(), free_port()
        cfg = write_config(base, grace="1s", extra=f"backup-port={p_port}\nrestore-port={s_port}\n"
                           f"{setting.extra}\n")
        writer = Writer(paths, period / tables)
        writer.start()
        t0 = time.monotonic()
        daemons.append(Daemon(cfg, "standby", s_port, setting.tick, base))
        daemons.append(Daemon(cfg, "primary", p_port, setting.tick, base))
        standby = daemons[0]
        wait_for("the first set restored", lambda: not math.isnan(metric(standby.metrics(),
                                                                         "drsync_rpo_seconds")),
                 timeout=setting.interval_s * 2 + 120)
        result.warmup_s = time.monotonic() - t0
        print(f"  first set restored after {result.warmup_s:.0f} s; sampling for {minutes:g} min", flush=True)
        start = time.monotonic()
        c0 = writer.commits
        nxt = start
        while time.monotonic() - start < minutes * 60:
            for d in daemons:
                if d.proc.poll() is not None:
                    raise RuntimeError(f"{d.role} daemon exited {d.proc.returncode}: "
                                       f"{d.log.read_text()[-2000:]}")
            try:
                rpo = metric(standby.metrics(), "drsync_rpo_seconds")
                if not math.isnan(rpo):
                    result.samples.append(rpo)
            except httpx.HTTPError as e:
                result.note = f"a scrape failed: {e}"
            nxt += 1.0
            time.sleep(max(0.0, nxt - time.monotonic()))
        result.seconds = time.monotonic() - start
        result.commits, result.write_errors = writer.commits - c0, writer.errors
        if writer.errors:
            result.note = f"{writer.errors} writes failed, last: {writer.last_error}"
        for d, attr in ((daemons[1], "backup_mean_s"), (daemons[0], "restore_mean_s")):
            text = d.metrics()
            count = metric(text, "drsync_round_duration_seconds_count")
            if count:
                setattr(result, attr, metric(text, "drsync_round_duration_seconds_sum") / count)
        return result
    finally:
        if writer is not None:
            writer.stop.set()
            writer.join(30)
        for d in daemons:
            d.stop()
        rmtree_force(base)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=3.0, help="sampling time per setting (default 3)")
    ap.add_argument("--quick", action="store_true", help="1 minute per setting, for a check")
    ap.add_argument("--tables", type=int, default=50)
    ap.add_argument("--period", type=float, default=5.0, help="seconds between commits to one table")
    ap.add_argument("--tick", type=float, action="append", default=None,
                    help="TEST-ONLY daemon --tick values to try as well (default: 2)")
    ap.add_argument("--only", choices=["default", "minimum", "tick", "continuous"], action="append",
                    default=None,
                    help="run only these settings (repeatable; default: all)")
    args = ap.parse_args()
    minutes = 1.0 if args.quick else args.minutes
    ticks = args.tick if args.tick is not None else [2.0]
    settings = [
        Setting("backup 1m, restore 1m (default)", 60,
                "backup-exec-time-interval=1m\nrestore-interval=1m"),
        Setting("backup 10s (minimum), restore 5s", 10,
                "backup-exec-time-interval=10s\nrestore-interval=5s"),
        *[Setting(f"--tick {t:g} (TEST-ONLY knob): every job every {t:g}s", t,
                  "backup-exec-time-interval=10s\nrestore-interval=5s", tick=t) for t in ticks],
    ]

    kinds = ["default", "minimum", *["tick"] * len(ticks)]
    settings = [st for st, kind in zip(settings, kinds, strict=True)
                if args.only is None or kind in args.only]

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    print(f"drsync RPO under steady writes: {args.tables} tables, one commit to a random table every "
          f"{args.period / args.tables:.2f} s (each table every ~{args.period:g} s), {minutes:g} min per "
          f"setting; transport=local, barrier-grace=1s (default), both daemons started together; "
          f"host {platform.node()}, nproc {os.cpu_count()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
          flush=True)
    results: list[Result] = []
    continuous = None
    try:
        if args.only is None or "continuous" in args.only:
            print("- continuous (replication-mode=continuous, continuous-min-interval=1s): RPO per commit, "
                  "measured on the standby (bench/rpo_continuous.py)", flush=True)
            continuous = run_continuous(minutes, args.tables, args.period, Daemon, wait_for, free_port,
                                        small_file)
        for s in settings:
            print(f"- {s.label}", flush=True)
            try:
                results.append(run_setting(s, minutes, args.tables, args.period))
            except RuntimeError as e:
                print(f"  FAILED: {e}", flush=True)
    except KeyboardInterrupt:
        print("interrupted: daemons stopped, temp dirs removed", file=sys.stderr)
        return 130

    head = (f"| {'setting':<52} | samples | commits/s | p50 s | p95 s | p99 s | max s | mean backup round s "
            f"| mean restore pass s | goal p99 <= |")
    print("\n" + head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    verdicts = []
    for r in results:
        goal = r.setting.interval_s + 30
        p99 = percentile(r.samples, 99)
        ok = "PASS" if r.samples and p99 <= goal else "MISS"
        verdicts.append(f"{ok} {r.setting.label}: p99 {p99:g} s vs goal {goal:g} s"
                        + (f" ({r.note})" if r.note else ""))
        rate = r.commits / r.seconds if r.seconds else math.nan
        p50, p95 = percentile(r.samples, 50), percentile(r.samples, 95)
        print(f"| {r.setting.label:<52} | {len(r.samples):>7} | {rate:>9.1f} | {p50:>5g} | {p95:>5g} "
              f"| {p99:>5g} | {max(r.samples, default=math.nan):>5g} "
              f"| {r.backup_mean_s:>20.2f} | {r.restore_mean_s:>19.2f} | {goal:>10g} s |")
    print()
    for v in verdicts:
        print(v)
    if continuous is not None:
        print(continuous_report(continuous, percentile))
        verdicts.append(continuous_report(continuous, percentile).splitlines()[-1])
    return 0 if results and all(v.startswith("PASS") for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
