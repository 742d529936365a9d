"""Continuous mode's RPO, measured independently of drsync (issue #14); run by `bench/rpo.py
--only continuous`.

Both daemons run with replication-mode=continuous (continuous-min-interval=1s, default
barrier-grace=1s, schedules at 1m as the rescan). The writer commits to a random one of TABLES
tables at a fixed rate (default 10 commits/s in all). For every commit: the moment
`write_deltalake` returned (the commit file exists on the primary), and the first moment the
standby has that version's commit file AND the table read on the standby (deltalake) is at that
version or newer. RPO of the commit = the difference. Checked every CHECK_S seconds, so the
figures are up to CHECK_S high. drsync's own RPO figure is not used.

CPU: utime+stime of each daemon process (/proc/<pid>/stat) over the sampling window, as % of
one core; idle: the same over IDLE_S seconds after the writer stopped and the last commit landed.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deltalake import DeltaTable, write_deltalake

from drsync.demo import write_config
from drsync.fsutil import rmtree_force

CHECK_S = 0.02
IDLE_S = 30.0
EXTRA = ("replication-mode=continuous\ncontinuous-min-interval=1s\n"
         "backup-exec-time-interval=1m\nrestore-interval=1m\n")


@dataclass
class Outcome:
    rpos: list[float] = field(default_factory=list)
    commits: int = 0
    missing: int = 0  # commits never seen on the standby before the end
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # role -> % of one core while writing
    idle_cpu: dict[str, float] = field(default_factory=dict)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Checker(threading.Thread):
    """Watches the standby for each commit the writer made."""

    def __init__(self, standby_wh: Path, primary_wh: Path) -> None:
        super().__init__(daemon=True)
        self.standby_wh, self.primary_wh = standby_wh, primary_wh
        self.pending: dict[Path, list[tuple[int, float]]] = {}  # table rel path -> (version, committed at)
        self.lock = threading.Lock()
        self.rpos: list[float] = []
        self.stop = threading.Event()

    def committed(self, rel: Path, version: int, at: float) -> None:
        with self.lock:
            self.pending.setdefault(rel, []).append((version, at))

    def outstanding(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.pending.values())

    def run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                todo = {rel: list(v) for rel, v in self.pending.items() if v}
            for rel, commits in todo.items():
                table = self.standby_wh / rel
                # the newest pending version's commit file first (a stat), then the read
                present = [v for v, _ in commits if (table / "_delta_log" / f"{v:020d}.json").exists()]
                if not present:
                    continue
                try:
                    readable = int(DeltaTable(str(table)).version())
                except Exception:
                    continue
                now = time.monotonic()
                done = {v for v in present if v <= readable}
                with self.lock:
                    keep = []
                    for v, at in self.pending[rel]:
                        if v in done:
                            self.rpos.append(now - at)
                        else:
                            keep.append((v, at))
                    self.pending[rel] = keep
            self.stop.wait(CHECK_S)


def run_continuous(minutes: float, tables: int, period: float, daemon_cls: Any, wait_for: Any,
                   free_port: Any, small_file: Any) -> Outcome:
    out = Outcome()
    base = Path(tempfile.mkdtemp(prefix="drsync-rpo-cont-"))
    daemons: list[Any] = []
    checker: Checker | None = None
    try:
        wh, swh = base / "primary" / "warehouse", base / "standby" / "warehouse"
        swh.mkdir(parents=True)
        rels = [Path(f"db{i // 10}") / "public" / f"t{i:02d}" for i in range(tables)]
        for i, rel in enumerate(rels):
            write_deltalake(str(wh / rel), small_file(i * 1_000_000))
        versions = dict.fromkeys(rels, 0)
        p_port, s_port = free_port(), free_port()
        cfg = write_config(base, grace="1s", extra=f"backup-port={p_port}\nrestore-port={s_port}\n{EXTRA}")
        daemons.append(daemon_cls(cfg, "standby", s_port, None, base))
        daemons.append(daemon_cls(cfg, "primary", p_port, None, base))
        last = rels[-1]
        wait_for("the first set restored", lambda: (swh / last / "_delta_log").is_dir()
                 and DeltaTable(str(swh / last)).version() >= 0, timeout=180)
        print(f"  first set restored; writing and sampling for {minutes:g} min", flush=True)
        checker = Checker(swh, wh)
        checker.start()
        cpu0 = {d.role: cpu_seconds(d.proc.pid) for d in daemons}
        rng, every = random.Random(7), period / tables
        start = nxt = time.monotonic()
        while time.monotonic() - start < minutes * 60:
            rel = rng.choice(rels)
            write_deltalake(str(wh / rel), small_file(out.commits * 100), mode="append")
            versions[rel] += 1
            checker.committed(rel, versions[rel], time.monotonic())
            out.commits += 1
            nxt += every
            time.sleep(max(0.0, nxt - time.monotonic()))
        out.seconds = time.monotonic() - start
        out.cpu = {d.role: 100 * (cpu_seconds(d.proc.pid) - cpu0[d.role]) / out.seconds for d in daemons}
        deadline = time.monotonic() + 60
        while checker.outstanding() and time.monotonic() < deadline:
            time.sleep(0.1)
        out.missing = checker.outstanding()
        checker.stop.set()
        checker.join()
        time.sleep(5)  # the last rounds and restores end
        idle0 = {d.role: cpu_seconds(d.proc.pid) for d in daemons}
        time.sleep(IDLE_S)
        out.idle_cpu = {d.role: 100 * (cpu_seconds(d.proc.pid) - idle0[d.role]) / IDLE_S for d in daemons}
        out.rpos = list(checker.rpos)
        return out
    finally:
        if checker is not None:
            checker.stop.set()
        for d in daemons:
            d.stop()
        rmtree_force(base)


def report(out: Outcome, percentile: Any) -> str:
    p50, p99 = percentile(out.rpos, 50), percentile(out.rpos, 99)
    top = max(out.rpos, default=math.nan)
    rate = out.commits / out.seconds if out.seconds else math.nan
    verdict = "PASS" if out.rpos and not out.missing and p99 <= 5 else "MISS"
    return (f"| continuous, min-interval 1s | {len(out.rpos)} commits | {rate:.1f}/s | p50 {p50:.2f} s "
            f"| p99 {p99:.2f} s | max {top:.2f} s | CPU primary {out.cpu.get('primary', math.nan):.1f} % "
            f"standby {out.cpu.get('standby', math.nan):.1f} % | idle primary "
            f"{out.idle_cpu.get('primary', math.nan):.2f} % "
            f"standby {out.idle_cpu.get('standby', math.nan):.2f} % "
            f"| {out.missing} never seen |\n{verdict} continuous: p99 {p99:.2f} s vs goal 5 s (stretch 2 s)")
