"""Peak memory and wire bytes of an initial sync of one big table over SSH (issue #13).

`drsync backup` and then `drsync restore` (the CLI, fresh sites) of one `--size-mb` (5120) MiB
Delta table of `--files` (40) incompressible Parquet files, over the loopback OpenSSH server of
bench/ssh_throughput.py, each command run under `/usr/bin/time -v` (Debian's `time`; `make
sysdeps`): its "Maximum resident set size" is the figure. The agent on the far side reports its
own peak (getrusage) through the timed agent wrapper of ssh_throughput.py.

The link goes through a counting TCP proxy on 127.0.0.1 (tests/faultproxy.py, no fault set), so
the bytes on the wire (SSH framing, encryption, protocol round trips) are counted and divided by
the table's new bytes; the sites use `compression-level=0` (the issue's "level 0" ratio).

The table is cheap to make: every file carries the same random blobs (`make_table(one_blob=
True)`), written once through pyarrow; it still is incompressible file by file.

Run: `.venv/bin/python bench/rss.py [--size-mb 5120] [--files 40] [--parallel 2]`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.ssh_throughput import MB, Bench, make_table, settle, tree_files  # noqa: E402
from tests.faultproxy import FaultProxy  # noqa: E402
from tests.integration.test_ssh import known_hosts_for_port  # noqa: E402

GOAL_MB = 256
TIME = "/usr/bin/time"


def timed(argv: list[str], cwd: Path) -> tuple[float, int, str]:
    """(wall s, peak RSS in MB) of one command under /usr/bin/time -v; fails loudly."""
    t0 = time.monotonic()
    p = subprocess.run([TIME, "-v", *argv], capture_output=True, text=True, cwd=cwd, timeout=3600)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    if m is None:
        raise RuntimeError(f"no RSS in /usr/bin/time's output:\n{p.stderr[-2000:]}")
    return wall, int(m.group(1)) * 1024 // 1_000_000, p.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=5120, help="table size in MiB (default 5120)")
    ap.add_argument("--files", type=int, default=40, help="Parquet files (default 40)")
    ap.add_argument("--parallel", type=int, default=2, help="parrallel-process (default 2)")
    ap.add_argument("--workdir", default=None, help="parent of the temporary directory")
    ap.add_argument("--markdown", default=None, help="also write the result table to this file")
    args = ap.parse_args()
    if not Path(TIME).is_file():
        raise SystemExit(f"{TIME} is missing: apt-get install time (make sysdeps)")
    ns = argparse.Namespace(variant=None, drsync_src=None, wait_idle=0.0, size_mb=args.size_mb,
                            files=args.files)
    work = Path(tempfile.mkdtemp(prefix="drsync-rss-", dir=args.workdir))
    bench: Bench | None = None
    proxy: FaultProxy | None = None
    try:
        bench = Bench(ns, work)
        t0 = time.monotonic()
        table = make_table(bench.warehouse, args.size_mb, args.files, one_blob=True)
        files = tree_files(table)
        total = sum(f.stat().st_size for f in files)
        parquet = sum(f.stat().st_size for f in files if f.suffix == ".parquet")
        print(f"table: {len(files)} files, {total / MB:.0f} MB, made in {time.monotonic() - t0:.0f} s",
              flush=True)
        proxy = FaultProxy("127.0.0.1", bench.srv.port).start()
        base, cfg, agent_out = bench.sites("rss", args.parallel, bench.variants[0])
        kh = known_hosts_for_port(bench.srv, proxy.port, base / "known_hosts_proxy")
        text = cfg.read_text().replace(f"ssh-port={bench.srv.port}\n", f"ssh-port={proxy.port}\n")
        text = text.replace(f"known-hosts-file={bench.srv.known_hosts}\n", f"known-hosts-file={kh}\n")
        cfg.write_text(text.replace("compression-level=1\n", "compression-level=0\n"))
        settle()
        drsync = [sys.executable, "-m", "drsync"]
        up0 = proxy.bytes_up + proxy.bytes_down
        b_wall, b_rss, _ = timed([*drsync, "backup", "--now", "-c", str(cfg)], work)
        wire = proxy.bytes_up + proxy.bytes_down - up0
        r_wall, r_rss, _ = timed([*drsync, "restore", "-c", str(cfg)], work)
        got = sum(f.stat().st_size for f in tree_files(base / "standby" / "warehouse" / "bench"))
        if got < total:
            raise RuntimeError(f"the standby table holds {got} bytes, the primary's {total}")
        agents = [__import__("json").loads(f.read_text()) for f in agent_out.glob("agent-*.json")]
        a_rss = max((a.get("maxrss_kb", 0) for a in agents), default=0) * 1024 // 1_000_000
        rows = [
            ("`drsync backup` (collect, place, ship)", b_wall, b_rss),
            ("`drsync restore` (verify, link, rename)", r_wall, r_rss),
            (f"`drsync agent` (largest of {len(agents)})", b_wall, a_rss),
        ]
        out = [f"{total / MB:.0f} MB table ({len(files)} files, {args.files} Parquet of "
               f"{parquet / args.files / 2**20:.0f} MiB), parrallel-process={args.parallel}, "
               f"compression-level=0; goal: peak RSS <= {GOAL_MB} MB", "",
               "| command | wall s | MB/s | peak RSS MB | goal |", "|---|---:|---:|---:|---|"]
        for name, wall, rss in rows:
            ok = "PASS" if rss <= GOAL_MB else "MISS"
            out.append(f"| {name} | {wall:.1f} | {total / MB / wall:.0f} | {rss} | {ok} |")
        out += ["", f"bytes on the wire (both directions, through the counting proxy) ÷ new bytes: "
                f"{wire / total:.4f} (÷ new Parquet bytes {wire / parquet:.4f}); goal <= 1.02"]
        print("\n".join(out))
        if args.markdown:
            Path(args.markdown).write_text("\n".join(out) + "\n")
    finally:
        if proxy is not None:
            proxy.stop()
        if bench is not None:
            bench.sampler.stop()
            bench.srv.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
