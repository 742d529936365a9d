"""Initial sync of one big Delta table over SSH: drsync against rsync -a, scp, a raw pipe, paramiko.

Everything runs on this host over loopback, against a real OpenSSH server that the benchmark
starts itself (`tests/sshd.py`: 127.0.0.1, throwaway keys, strict host keys). The table is
written once: `--files` (8) Parquet files of `--size-mb`/`--files` MiB each (default 1024 MiB in
all; `--quick`: 256 MiB) of incompressible random data (an int64 id, a random int64 key and a
4 KiB random binary blob per row, zstd Parquet), so no method gains anything by compressing.
The page cache is warm (every source file is read before each method) and `sync` runs between
measurements, so one method's dirty pages are not written back during the next one.

Methods, each `--reps` (3) times, round-robin, median reported (MB = 10^6 bytes of the table):

* `raw pipe`: `cat FILES | ssh HOST 'cat > /dev/null'`, OpenSSH's default cipher; also with
  `-c aes128-gcm@openssh.com` (what the SSH layer alone can do here);
* `scp -r` and `rsync -a -e "ssh ..."` of the table directory to a fresh directory; also
  `rsync -a --fsync` (durable on arrival, as drsync is);
* `paramiko SFTP`: one connection, `putfo` of each file (paramiko's default ciphers);
* drsync with `parrallel-process` 1, 2, 4: `drsync backup` then `drsync restore` (the CLI, a
  fresh Python process each, fresh sites each time). Three figures: (a) `ship` = the SHIP step
  alone (`ship_set`, timed inside the backup process by wrapping it), (b) `backup` = the whole
  `drsync backup` command (Python start, collect, bundling with hashing, fsyncs, ship),
  (c) `backup+restore` = (b) plus the whole `drsync restore` command (until the data is in the
  standby warehouse).

Where the CPU goes: a sampler process reads /proc every 0.1 s and charges CPU time to every
process below this one (the sshd tree included), so each row gets CPU seconds per GB by process
(`drsync`, `sshd`, `agent`, `ssh`, `rsync`, ...); for drsync, per phase. The drsync agent runs
under small timers (`os.fsync`, `file_hash`, `op_put`), and the backup process times how long
its threads wait for the agent's replies. Then (unless `--no-profile`) one more drsync round with
`parrallel-process=1` runs under py-spy (sender and agent; `pip install py-spy` into the venv),
and a cipher matrix sends the same bytes over one raw paramiko channel with each cipher.

The machine may be shared: the sampler also counts the CPU that processes outside the benchmark
used during each measurement (`other load` column); above `--max-other` (10 %) the measurement is
repeated (twice at most), after waiting up to `--wait-idle` seconds for the machine to be quiet.

`--drsync-src DIR` runs drsync (CLI and agent) from another source tree; `--variant
LABEL=[DIR][,VAR=VALUE...]` (repeatable) measures several trees or settings side by side in one
run, round-robin (how the prototypes in bench/RESULTS.md were compared); `--only` picks methods.

Run: `.venv/bin/python bench/ssh_throughput.py [--quick] [--markdown FILE]`; `--help` for options.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
GOAL_RATIO = 1.2  # drsync >= 1.2x rsync -a (the goal); scp's speed is the stretch
BLOB = 4096
MB = 1e6
OTHER = "other"  # CPU used on the machine outside this benchmark's processes
METHODS = ("pipe", "scp", "rsync", "paramiko", "drsync", "profile", "ciphers")


# ---------------------------------------------------------------- CPU sampler (a process of its own)


def _sampler_main(root: int, sshd_pid: int, interval: float, out: str) -> None:
    """Every `interval` s: one JSON line with the CPU ticks of every process below `root`."""
    me = os.getpid()
    seen: dict[tuple[int, int], str] = {}  # -> comm when last seen (it changes at exec)
    with open(out, "a", buffering=1 << 16) as f:
        while True:
            t = time.time()
            with open("/proc/stat", "rb") as st:
                cpu = [int(x) for x in st.readline().split()[1:9]]
            busy = sum(cpu) - cpu[3] - cpu[4]  # all but idle and iowait: user, nice, system, irq, steal
            procs: dict[int, tuple[int, str, int, int]] = {}
            for name in os.listdir("/proc"):
                if not name.isdigit():
                    continue
                try:
                    with open(f"/proc/{name}/stat", "rb") as s:
                        raw = s.read()
                except OSError:
                    continue
                r = raw.rindex(b")")
                fields = raw[r + 2:].split()
                comm = raw[raw.index(b"(") + 1:r].decode(errors="replace")
                procs[int(name)] = (int(fields[1]), comm, int(fields[11]) + int(fields[12]), int(fields[19]))
            if root not in procs:
                return
            kids: dict[int, list[int]] = defaultdict(list)
            for pid, (ppid, *_rest) in procs.items():
                kids[ppid].append(pid)
            rows = []
            todo = [(root, False)]
            while todo:
                pid, remote = todo.pop()
                remote = remote or pid == sshd_pid
                if pid != me:
                    _ppid, comm, ticks, start = procs[pid]
                    cmd = None
                    if seen.get((pid, start)) != comm:
                        seen[(pid, start)] = comm
                        with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as c:
                            cmd = c.read().replace(b"\0", b" ").decode(errors="replace")[:300]
                    rows.append([pid, start, comm, int(remote), ticks, cmd])
                todo.extend((k, remote) for k in kids.get(pid, []))
            f.write(json.dumps({"t": t, "busy": busy, "p": rows}) + "\n")
            f.flush()
            time.sleep(max(0.0, interval - (time.time() - t)))


@dataclass
class _Series:
    category: str
    start: float  # wall-clock start of the process
    points: list[tuple[float, float]] = field(default_factory=list)  # (time, CPU seconds)

    def at(self, t: float) -> float:
        """CPU seconds used by time t, interpolated between samples (0 before the process started)."""
        pts = self.points
        if t >= pts[-1][0]:
            return pts[-1][1]
        i = bisect.bisect_left(pts, (t, -1.0))
        prev = pts[i - 1] if i else (self.start, 0.0)
        if t <= prev[0]:
            return prev[1] if i else 0.0
        nxt = pts[i]
        return prev[1] + (nxt[1] - prev[1]) * (t - prev[0]) / (nxt[0] - prev[0])


class Sampler:
    """CPU seconds by process category between two wall-clock times (error <= one interval each)."""

    def __init__(self, workdir: Path, sshd_pid: int, interval: float = 0.1) -> None:
        self.path = workdir / "cpu-samples.jsonl"
        self.path.touch()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--_sample", str(os.getpid()), str(sshd_pid), str(interval),
             str(self.path)], stdin=subprocess.DEVNULL)
        self._offset = 0
        self.series: dict[tuple[int, int], _Series] = {}
        self.machine = _Series("machine", 0.0)  # busy CPU seconds of the whole machine, since boot
        self.tick = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as f:
            self.btime = next(int(ln.split()[1]) for ln in f if ln.startswith("btime"))
        self.root = os.getpid()

    def _classify(self, pid: int, comm: str, remote: bool, cmd: str) -> str:
        if pid == self.root:
            return "bench"
        if comm == "py-spy":
            return "py-spy"
        python = comm.startswith("python")
        if remote:
            if comm == "sshd":
                return "sshd"
            if python:
                return "agent" if " agent " in f" {cmd} " else "remote python"
            return f"remote {comm}"
        if python:
            if "multiprocessing" in cmd:
                return "drsync workers"
            return "drsync" if "drsync" in cmd or "BENCH" in cmd else comm
        return comm

    def _read(self) -> None:
        with open(self.path) as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind("\n") + 1
        self._offset += len(data[:end].encode())
        for line in data[:end].splitlines():
            doc = json.loads(line)
            self.machine.points.append((doc["t"], doc["busy"] / self.tick))
            for pid, start, comm, remote, ticks, cmd in doc["p"]:
                key = (pid, start)
                s = self.series.get(key)
                if s is None:
                    s = self.series[key] = _Series("", self.btime + start / self.tick)
                if cmd is not None:  # first seen, or exec'd since: the whole process gets its last name
                    s.category = self._classify(pid, comm, bool(remote), cmd)
                s.points.append((doc["t"], ticks / self.tick))

    def cpu(self, t0: float, t1: float) -> dict[str, float]:
        """CPU seconds by category; `other` = the rest of the machine (other users, kernel threads)."""
        time.sleep(0.25)  # let the sampler see the end of the window
        self._read()
        out: dict[str, float] = defaultdict(float)
        for s in self.series.values():
            if s.points and s.points[-1][0] >= t0 and s.start <= t1:
                d = s.at(t1) - s.at(t0)
                if d > 0:
                    out[s.category] += d
        if self.machine.points:
            self.machine.start = self.machine.points[0][0]
            out[OTHER] = max(0.0, self.machine.at(t1) - self.machine.at(t0) - sum(out.values()))
        return dict(out)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


# ---------------------------------------------------------------- helpers run by drsync processes

# `drsync backup|restore` as the CLI runs it, with timers around the backup's phases and around the
# sender's waits for agent replies; reported on stderr as one `BENCH {json}` line at exit.
DRIVER = r"""
import atexit, json, sys, time
phases, waits = {}, [0.0]
import drsync.primary.round as primary
def timed(mod, name, key):
    fn = getattr(mod, name)
    def wrapper(*a, **k):
        t0 = time.time()
        try:
            return fn(*a, **k)
        finally:
            phases.setdefault(key, []).append([t0, time.time()])
    setattr(mod, name, wrapper)
timed(primary, "_build_set", "build")
timed(primary, "ship_set", "ship")
import drsync.transport.ssh as ssh
_reply = ssh.Link.reply
def reply(self):
    t0 = time.perf_counter()
    try:
        return _reply(self)
    finally:
        waits[0] += time.perf_counter() - t0
ssh.Link.reply = reply
atexit.register(lambda: print("BENCH " + json.dumps({"phases": phases, "reply_wait": waits[0],
                                                    "drsync": primary.__file__}), file=sys.stderr))
sys.argv = ["drsync", *sys.argv[1:]]
from drsync.cli.main import main
main()
"""

# The agent's command line on the standby: `python agent_timed.py OUTDIR PYSPY agent ...`
# is drsync's agent with timers (and py-spy attached when PYSPY is not "-").
AGENT = r"""
import atexit, json, os, subprocess, sys, time
out, pyspy = sys.argv[1], sys.argv[2]
sys.argv = ["drsync", *sys.argv[3:]]
if pyspy != "-":
    subprocess.Popen([pyspy, "record", "--native", "--pid", str(os.getpid()), "--rate", "100", "-f", "raw",
                      "-o", os.path.join(out, f"agent-{os.getpid()}.pyspy")],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
t = {"put": 0.0, "fsync": 0.0, "hash": 0.0, "put_fsync": 0.0, "put_hash": 0.0, "files": 0, "bytes": 0}
in_put = [False]
import drsync.transport.agent as ag
def timer(fn, key):
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            dt = time.perf_counter() - t0
            t[key] += dt
            if in_put[0]:
                t["put_" + key] += dt
    return wrapper
ag.file_hash = timer(ag.file_hash, "hash")
os.fsync = timer(os.fsync, "fsync")
_put = ag.Agent.op_put
def op_put(self, req, r):
    t0 = time.perf_counter()
    in_put[0] = True
    try:
        return _put(self, req, r)
    finally:
        in_put[0] = False
        t["put"] += time.perf_counter() - t0
        t["files"] += 1
        t["bytes"] += req.get("length") or 0
ag.Agent.op_put = op_put
def dump():
    import resource
    t["cpu"] = time.process_time()
    t["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t["drsync"] = ag.__file__
    with open(os.path.join(out, f"agent-{os.getpid()}.json"), "w") as f:
        json.dump(t, f)
atexit.register(dump)
from drsync.cli.main import main
main()
"""


# ---------------------------------------------------------------- the table


def make_table(warehouse: Path, size_mb: int, files: int, *, one_blob: bool = False) -> Path:
    """`files` appends of size_mb/files MiB each: one Parquet file per commit, random data.
    `one_blob`: every file carries the same random blobs (cheap for a table of many GB; each
    file is still incompressible, and nothing in drsync looks across files)."""
    import pyarrow as pa
    from deltalake import WriterProperties, write_deltalake

    path = warehouse / "bench" / "raw" / "blobs"
    per_file = (size_mb << 20) // files
    rows = per_file // (BLOB + 16)
    props = WriterProperties(compression="ZSTD", max_row_group_size=8192)
    offsets = pa.array(range(0, (rows + 1) * BLOB, BLOB), pa.int32()).buffers()[1]
    shared = pa.py_buffer(os.urandom(rows * BLOB)) if one_blob else None
    for i in range(files):
        data = shared or pa.py_buffer(os.urandom(rows * BLOB))
        blob = pa.Array.from_buffers(pa.binary(), rows, [None, offsets, data])
        key = pa.Array.from_buffers(pa.int64(), rows, [None, pa.py_buffer(os.urandom(rows * 8))])
        ids = pa.array(range(i * rows, (i + 1) * rows), pa.int64())
        write_deltalake(str(path), pa.table({"id": ids, "key": key, "blob": blob}), mode="append",
                        target_file_size=1 << 40, writer_properties=props)
    return path


def tree_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def warm(files: list[Path]) -> None:
    buf = bytearray(1 << 20)
    for p in files:
        with open(p, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def settle(wait_idle: float = 0.0) -> None:
    """Write back dirty pages (untimed) so a measurement does not pay for the previous one's; with
    `wait_idle`, then wait up to that many seconds for the machine to be idle (others' work)."""
    os.sync()
    deadline = time.monotonic() + wait_idle
    while wait_idle:
        load = _busy_share(1.0)
        if load < 0.15:
            return
        if time.monotonic() > deadline:
            print(f"  (machine still {load:.0%} busy with other work; measuring anyway)", flush=True)
            return
        time.sleep(2.0)


def _busy_share(seconds: float) -> float:
    def busy() -> tuple[int, int]:
        with open("/proc/stat") as f:
            cpu = [int(x) for x in f.readline().split()[1:9]]
        return sum(cpu) - cpu[3] - cpu[4], sum(cpu)

    b0, t0 = busy()
    time.sleep(seconds)
    b1, t1 = busy()
    return (b1 - b0) / max(t1 - t0, 1)


def rmtree(path: Path) -> None:
    from drsync.fsutil import rmtree_force

    rmtree_force(path)


# ---------------------------------------------------------------- measurements


@dataclass
class Sample:
    seconds: float
    cpu: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    name: str
    group: str  # "reference" or "drsync"
    samples: list[Sample] = field(default_factory=list)
    note: str = ""

    def mbps(self, nbytes: int) -> list[float]:
        return [nbytes / s.seconds / MB for s in self.samples]

    def median(self, nbytes: int) -> float:
        return statistics.median(self.mbps(nbytes)) if self.samples else float("nan")

    def other_load(self) -> float:
        """Mean share of the machine's CPUs busy outside this benchmark (other users, kernel threads)."""
        ncpu = os.cpu_count() or 1
        return statistics.mean(s.cpu.get(OTHER, 0.0) / (s.seconds * ncpu) for s in self.samples)

    def cpu_per_gb(self, nbytes: int) -> dict[str, float]:
        total: dict[str, float] = defaultdict(float)
        for s in self.samples:
            for k, v in s.cpu.items():
                total[k] += v
        n = max(len(self.samples), 1)
        return {k: v / n / (nbytes / 1e9) for k, v in sorted(total.items(), key=lambda kv: -kv[1])}


@dataclass
class Variant:
    label: str
    env: dict[str, str]


def parse_variants(args: argparse.Namespace) -> list[Variant]:
    """`--variant LABEL=[DIR][,VAR=VALUE...]`; none: this checkout (or --drsync-src), labelled drsync."""
    specs = args.variant or [f"drsync={args.drsync_src or ''}"]
    out = []
    for spec in specs:
        label, _, rest = spec.partition("=")
        src, *pairs = rest.split(",")
        env = dict(pair.split("=", 1) for pair in pairs)
        if src:
            if not (Path(src) / "drsync" / "__init__.py").is_file():
                raise SystemExit(f"--variant {spec}: {src} has no drsync package")
            env["PYTHONPATH"] = str(Path(src).resolve())
        if not label or " " in label:
            raise SystemExit(f"--variant {spec}: give it a label without spaces")
        out.append(Variant(label, env))
    return out


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        from tests.sshd import start_sshd

        self.args = args
        self.work = work
        self.srv = start_sshd(work / "sshd")
        assert self.srv.pid is not None
        self.sampler = Sampler(work, self.srv.pid)
        self.python = sys.executable
        self.env = dict(os.environ)
        self.env.pop("DRSYNC_DEBUG", None)
        self.variants = parse_variants(args)
        self.agent_py = work / "agent_timed.py"
        self.agent_py.write_text(AGENT)
        base = self.srv.ssh_command()
        assert base[1] == "-p" and base[-3] == "-l", base
        self.ssh_e = base[:-3]  # for rsync -e: no user, no host
        self.scp_opts = ["-P", str(self.srv.port), *base[3:-3]]
        self.dest = f"{self.srv.user}@{self.srv.host}"
        self.warehouse = work / "warehouse"
        self.table = Path()
        self.files: list[Path] = []
        self.nbytes = 0

    # -- setup
    def setup_table(self) -> None:
        t0 = time.perf_counter()
        self.table = make_table(self.warehouse, self.args.size_mb, self.args.files)
        self.files = tree_files(self.table)
        self.nbytes = sum(p.stat().st_size for p in self.files)
        parquet = [p.stat().st_size for p in self.files if p.suffix == ".parquet"]
        print(f"table: {len(parquet)} Parquet files of {statistics.mean(parquet) / 2**20:.1f} MiB, "
              f"{len(self.files)} files, {self.nbytes / MB:.1f} MB in all, written in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)

    def _measure(self, run: Callable[[], dict[str, Any] | None]) -> Sample:
        warm(self.files)
        settle(self.args.wait_idle)
        t0 = time.time()
        extra = run() or {}
        t1 = time.time()
        return Sample(t1 - t0, self.sampler.cpu(t0, t1), extra)

    def _run(self, argv: list[str], variant: Variant | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **variant.env} if variant else self.env
        # cwd: not the repository, whose drsync/ would shadow a variant's PYTHONPATH (`python -c` puts
        # the current directory first on sys.path)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=1800, env=env, cwd=self.work)
        if p.returncode != 0:
            raise RuntimeError(f"{shlex.join(argv)} exited {p.returncode}:\n"
                               f"{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
        return p

    # -- reference methods
    def pipe(self, cipher: str | None = None) -> Sample:
        argv = self.srv.ssh_command("cat > /dev/null")
        if cipher:
            argv = [argv[0], "-c", cipher, *argv[1:]]

        def go() -> None:
            cat = subprocess.Popen(["cat", *map(str, self.files)], stdout=subprocess.PIPE)
            ssh = subprocess.Popen(argv, stdin=cat.stdout)
            assert cat.stdout is not None
            cat.stdout.close()
            if ssh.wait(timeout=1800) or cat.wait(timeout=60):
                raise RuntimeError(f"raw pipe failed: ssh {ssh.returncode}, cat {cat.returncode}")

        return self._measure(go)

    def scp(self) -> Sample:
        target = self.work / "scp-target"
        try:
            return self._measure(lambda: self._run(
                ["scp", "-r", "-q", *self.scp_opts, str(self.table), f"{self.dest}:{target}"]) and None)
        finally:
            rmtree(target)

    def rsync(self, *opts: str) -> Sample:
        target = self.work / "rsync-target"
        try:
            argv = ["rsync", "-a", *opts, "-e", shlex.join(self.ssh_e), f"{self.table}/",
                    f"{self.dest}:{target}/"]
            return self._measure(lambda: self._run(argv) and None)
        finally:
            rmtree(target)

    def connect_paramiko(self, disabled: dict[str, list[str]] | None = None) -> Any:
        import paramiko

        client = paramiko.SSHClient()
        client.load_host_keys(str(self.srv.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(self.srv.host, port=self.srv.port, username=self.srv.user,
                       key_filename=str(self.srv.client_key), allow_agent=False, look_for_keys=False,
                       disabled_algorithms=disabled or {})
        return client

    def paramiko_sftp(self) -> Sample:
        target = self.work / "sftp-target"

        def go() -> dict[str, Any]:
            client = self.connect_paramiko()
            try:
                t = client.get_transport()
                sftp = client.open_sftp()
                made: set[str] = set()
                for p in self.files:
                    rel = p.relative_to(self.table)
                    for d in [*reversed(rel.parents)][1:]:
                        if str(d) not in made:
                            sftp.mkdir(str(target / d))
                            made.add(str(d))
                    if not made:
                        sftp.mkdir(str(target))
                        made.add(".")
                    with open(p, "rb") as f:
                        sftp.putfo(f, str(target / rel), file_size=p.stat().st_size)
                sftp.close()
                return {"cipher": _negotiated(t)}
            finally:
                client.close()

        (self.work / "sftp-target").mkdir()
        try:
            return self._measure(go)
        finally:
            rmtree(target)

    # -- drsync
    def sites(self, name: str, parallel: int, variant: Variant, pyspy: str = "-") -> tuple[Path, Path, Path]:
        base = self.work / name
        (base / "standby" / "warehouse").mkdir(parents=True)
        agent_out = base / "agent-timing"
        agent_out.mkdir()
        remote = [self.python, str(self.agent_py), str(agent_out), pyspy]
        if variant.env:  # sshd gives the agent a clean environment: pass the variant's on its command line
            remote = ["env", *(f"{k}={v}" for k, v in variant.env.items()), *remote]
        cfg = base / "backupRestore.ini"
        cfg.write_text(f"""transport=ssh
primary-warehouse={self.warehouse}
standby-warehouse={base / 'standby' / 'warehouse'}
primary-media-destination={base / 'primary' / 'media'}
primary-metadata-destination={base / 'primary' / 'metadata'}
restore-media-destination={base / 'standby' / 'media'}
restore-metadata-destination={base / 'standby' / 'metadata'}
primary-cluster-id={uuid.uuid4()}
standby-cluster-id={uuid.uuid4()}
parrallel-process={parallel}
compression-level=1
barrier-grace=0s
primary-host-ip={self.srv.host}
restore-host-ip={self.srv.host}
username={self.srv.user}
ssh-port={self.srv.port}
ssh-key-file={self.srv.client_key}
known-hosts-file={self.srv.known_hosts}
remote-drsync-command={shlex.join(remote)}
check-balance-retry-times=3
""")
        # A site protects only what a publication names (publications/): all of it here.
        self._run([self.python, "-m", "drsync", "publication", "create", "bench", "--all-databases",
                   "-c", str(cfg)], variant)
        return base, cfg, agent_out

    def drsync_round(self, variant: Variant, parallel: int, rep: int) -> tuple[Sample, Sample, Sample]:
        """(ship, backup, backup+restore) of one fresh initial sync."""
        base, cfg, agent_out = self.sites(f"{variant.label}-p{parallel}-{rep}", parallel, variant)
        try:
            warm(self.files)
            settle(self.args.wait_idle)
            t0 = time.time()
            p = self._run([self.python, "-c", DRIVER, "backup", "--now", "-c", str(cfg)], variant)
            t1 = time.time()
            r = self._run([self.python, "-m", "drsync", "restore", "-c", str(cfg)], variant)
            t2 = time.time()
            staged = tree_files(base / "standby" / "warehouse" / "bench")
            got = sum(f.stat().st_size for f in staged)
            if got < self.nbytes - 1_000_000:  # the data files at least (drsync adds no log of its own)
                raise RuntimeError(f"drsync restore left {got} bytes in the standby table, "
                                   f"expected ~{self.nbytes}:\n{p.stderr[-3000:]}\n"
                                   f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
            doc = json.loads(next(ln[6:] for ln in p.stderr.splitlines() if ln.startswith("BENCH ")))
            (s0, s1), = doc["phases"]["ship"]
            (b0, b1), = doc["phases"]["build"]
            agents = [json.loads(f.read_text()) for f in agent_out.glob("agent-*.json")]
            for used in [doc["drsync"], *(a.pop("drsync") for a in agents)]:
                if "PYTHONPATH" in variant.env and not used.startswith(variant.env["PYTHONPATH"]):
                    raise RuntimeError(f"variant {variant.label} ran the drsync of {used}")
            agent = {k: sum(a[k] for a in agents) for k in agents[0]} if agents else {}
            cpu_backup = self.sampler.cpu(t0, t1)
            phases = {"build": self.sampler.cpu(b0, b1), "ship": self.sampler.cpu(s0, s1),
                      "restore": self.sampler.cpu(t1, t2)}
            extra = {"build_s": b1 - b0, "ship_s": s1 - s0, "backup_s": t1 - t0, "restore_s": t2 - t1,
                     "reply_wait": doc["reply_wait"], "agent": agent, "agents": len(agents)}
            ship = Sample(s1 - s0, phases["ship"], extra)
            backup = Sample(t1 - t0, cpu_backup, {**extra, "cpu_build": phases["build"]})
            both = Sample(t2 - t0, self.sampler.cpu(t0, t2), {**extra, "cpu_restore": phases["restore"]})
            return ship, backup, both
        finally:
            rmtree(base)

    # -- profiling
    def profile(self) -> dict[str, Any]:
        """One drsync round, parrallel-process=1, sender and agent under py-spy (CPU samples)."""
        pyspy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if pyspy is None:
            return {"error": "py-spy not installed (.venv/bin/pip install py-spy)"}
        variant = self.variants[0]
        base, cfg, agent_out = self.sites("drsync-profile", 1, variant, pyspy)
        out = base / "sender.pyspy"
        try:
            warm(self.files)
            settle(self.args.wait_idle)
            self._run([pyspy, "record", "--native", "--rate", "100", "-f", "raw", "-o", str(out), "--",
                       self.python, "-c", DRIVER, "backup", "--now", "-c", str(cfg)], variant)
            deadline = time.time() + 20
            while time.time() < deadline and not list(agent_out.glob("agent-*.pyspy")):
                time.sleep(0.2)
            time.sleep(0.5)
            agent = list(agent_out.glob("agent-*.pyspy"))
            for f in [out, *agent]:  # kept with --keep
                shutil.copy(f, self.work / f.name)
            return {"sender": pyspy_summary(out, SENDER_RULES),
                    "agent": pyspy_summary(agent[0], AGENT_RULES) if agent else None}
        finally:
            rmtree(base)

    def ciphers(self) -> list[dict[str, Any]]:
        """One raw paramiko channel (`cat > /dev/null`), the same bytes, each cipher and write path."""
        import paramiko

        data = bytearray()
        for p in self.files:
            if p.suffix == ".parquet":
                data += p.read_bytes()
            if len(data) >= self.args.cipher_mb << 20:
                break
        del data[self.args.cipher_mb << 20:]
        view = memoryview(data)
        from drsync.fsutil import CHUNK

        ours = list(paramiko.Transport._preferred_ciphers)
        macs = list(paramiko.Transport._preferred_macs)
        cases = [
            ("paramiko default", {}, "makefile"),
            ("aes128-ctr + hmac-sha2-256-etm",
             {"macs": [m for m in macs if m != "hmac-sha2-256-etm@openssh.com"]}, "makefile"),
            ("aes128-gcm", {"ciphers": [c for c in ours if c != "aes128-gcm@openssh.com"]}, "makefile"),
            ("aes256-gcm", {"ciphers": [c for c in ours if c != "aes256-gcm@openssh.com"]}, "makefile"),
            ("paramiko default", {}, "sendall"),
            ("aes128-gcm", {"ciphers": [c for c in ours if c != "aes128-gcm@openssh.com"]}, "sendall"),
        ]
        results = []
        for label, disabled, path in cases:
            best = 0.0
            cpu_best: dict[str, float] = {}
            negotiated = ""
            for _ in range(2):
                client = self.connect_paramiko(disabled)
                try:
                    t = client.get_transport()
                    negotiated = _negotiated(t)
                    ch = t.open_session()
                    ch.exec_command("cat > /dev/null")
                    settle(self.args.wait_idle)
                    t0 = time.time()
                    if path == "makefile":  # what drsync's Link does: a 1 MiB-buffered file, 1 MiB writes
                        w = ch.makefile_stdin("wb", CHUNK)
                        for i in range(0, len(view), CHUNK):
                            w.write(view[i:i + CHUNK].tobytes())
                        w.flush()
                    else:  # the channel directly, 4 MiB memoryviews (no copy into a buffer first)
                        for i in range(0, len(view), 4 * CHUNK):
                            ch.sendall(view[i:i + 4 * CHUNK])
                    ch.shutdown_write()
                    ch.recv_exit_status()
                    t1 = time.time()
                finally:
                    client.close()
                rate = len(view) / (t1 - t0) / MB
                if rate > best:
                    best, cpu_best = rate, self.sampler.cpu(t0, t1)
            gb = len(view) / 1e9
            results.append({"case": label, "negotiated": negotiated, "path": path, "mbps": best,
                            "cpu": {k: v / gb for k, v in cpu_best.items()}})
            print(f"  cipher {label:32} {path:9} {negotiated:45} {best:6.0f} MB/s", flush=True)
        results.append({"chacha20": "chacha20-poly1305@openssh.com" in paramiko.Transport._cipher_info})
        return results


def _negotiated(t: Any) -> str:
    """Cipher and MAC of a paramiko transport (an AEAD cipher such as GCM uses no separate MAC)."""
    if "gcm" in t.local_cipher:
        return f"{t.local_cipher} (AEAD, no MAC)"
    return f"{t.local_cipher} + {t.local_mac}"


# ---------------------------------------------------------------- py-spy output

# py-spy --native counts a thread blocked in a syscall (read on a pipe, poll) as busy, so these are
# shares of *thread time* by code path, idle lock/poll waits removed; the sampler's per-process CPU
# is the CPU truth. Rules are tried in order on the whole stack; the first that matches wins.
IDLE = ("Condition.wait (", "Packetizer.read_all (", "Event.wait (", "_worker (concurrent", "Thread.join (")
SENDER_RULES = [
    ("startup (imports)", ("_find_and_load",)),
    ("connect (SSH handshake, agent start, hello)", ("Link.__init__ (",)),
    ("bundling: raw files (link + BLAKE3)", ("place_raw (",)),
    ("bundling: BLAKE2b (member + bundle hash)", ("write_bundle (", "blake2")),
    ("bundling: read source files", ("write_bundle (", "_HashingReader.read (")),
    ("bundling: write bundle (page cache)", ("write_bundle (", "_HashingWriter.write (")),
    ("bundling: fsync bundle", ("write_bundle (", "fsync")),
    ("bundling: other (tarfile, Python)", ("write_bundle (",)),
    ("ship: socket send (kernel, loopback)", ("WindowedSender._put (", "Packetizer.write_all (")),
    ("ship: MAC (hmac-sha2-256)", ("WindowedSender._put (", "hmac")),
    ("ship: encrypt", ("WindowedSender._put (", "Packetizer.send_message (", "crypt")),
    ("ship: read bundle (f.read in _put)", ("WindowedSender._put (drsync/transport/window.py", "read (libc")),
    ("ship: paramiko packetizer Python + copies", ("WindowedSender._put (", "Packetizer.")),
    ("ship: paramiko channel/file Python + copies", ("WindowedSender._put (", "paramiko/")),
    ("ship: drsync Python", ("WindowedSender.",)),
    ("other", ()),
]
AGENT_RULES = [
    ("startup (imports)", ("_find_and_load",)),
    ("receive: read stdin (blocked or copying)", ("Agent.op_put (", "read (libc")),
    ("receive: write() to the .part file", ("Agent.op_put (", "write (libc")),
    ("receive: BLAKE3 while receiving", ("Agent.op_put (", "blake3")),
    ("BLAKE2b re-read of the .part (file_hash)", ("file_hash (",)),
    ("finish (second thread): fsync", ("_finish_put (", "fsync")),
    ("finish (second thread): rename, reply", ("_finish_put (",)),
    ("fsync", ("fsync",)),
    ("receive: Python", ("Agent.op_put (",)),
    ("idle between requests (read_header)", ("read_header (",)),
    ("other", ()),
]


def pyspy_summary(path: Path, rules: list[tuple[str, tuple[str, ...]]], top: int = 10) -> dict[str, Any]:
    """Shares of busy thread samples by category (rules) and the hottest Python line + native leaf."""
    cats: dict[str, int] = defaultdict(int)
    leaves: dict[str, int] = defaultdict(int)
    idle = total = 0
    for line in path.read_text().splitlines():
        stack, _, n_text = line.rpartition(" ")
        if not n_text.isdigit():
            continue
        n = int(n_text)
        frames = stack.strip().split(";")
        py = [f for f in frames if ".py:" in f]
        if (py and py[-1].startswith(IDLE)) or re.match(r"(poll|select|epoll_wait) \(", frames[-1]):
            idle += n
            continue
        total += n
        joined = ";".join(frames)
        for label, needles in rules:
            if all(x in joined for x in needles):
                cats[label] += n
                break
        leaf = frames[-1] if frames else "?"
        key = _short(py[-1]) if py else "?"
        if leaf not in py:
            key += " -> " + re.sub(r" \(.*", "", leaf)
        leaves[key] += n
    total = max(total, 1)
    return {"samples": total, "idle": idle,
            "groups": {k: 100.0 * v / total for k, v in sorted(cats.items(), key=lambda kv: -kv[1])},
            "top": [(100.0 * v / total, k) for k, v in sorted(leaves.items(), key=lambda kv: -kv[1])[:top]]}


def _short(frame: str) -> str:
    m = re.match(r"(.*) \((.*?)\)$", frame)
    if not m:
        return frame
    where = m[2]
    for marker in ("site-packages/", "/drsync/", "lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{m[1]} ({where})"


# ---------------------------------------------------------------- report


def machine_info() -> dict[str, str]:
    import cryptography
    import paramiko
    from cryptography.hazmat.backends.openssl import backend

    ssh_v = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    rsync_v = subprocess.run(["rsync", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "?")
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "kernel": platform.release(),
            "python": platform.python_version(), "paramiko": paramiko.__version__,
            "cryptography": f"{cryptography.__version__} ({backend.openssl_version_text()})",
            "openssh": ssh_v, "rsync": rsync_v.replace("  ", " ")}


def openssh_default_cipher(bench: Bench) -> str:
    p = subprocess.run([*bench.srv.ssh_command("true")[:1], "-v", *bench.srv.ssh_command("true")[1:]],
                       capture_output=True, text=True, timeout=30)
    m = re.search(r"kex: client->server cipher: (\S+) MAC: (\S+)", p.stderr)
    return f"{m[1]} + {m[2]}" if m else "?"


def fmt_cpu(cpu: dict[str, float], limit: int = 4) -> str:
    items = [(k, v) for k, v in cpu.items() if v >= 0.05 and k != OTHER][:limit]
    return ", ".join(f"{k} {v:.1f}" for k, v in items) or "-"


def report(bench: Bench, rows: list[Row], extras: dict[str, Any]) -> str:
    n = bench.nbytes
    by = {r.name: r for r in rows}
    lines = []
    lines.append("| method | MB/s (median) | min–max | CPU s per GB, by process | other load |")
    lines.append("|---|---:|---:|---|---:|")
    for r in rows:
        if not r.samples:
            continue
        rates = r.mbps(n)
        name = r.name.replace("|", "\\|")  # a literal | inside a Markdown table cell
        lines.append(f"| {name} | **{r.median(n):.0f}** | {min(rates):.0f}–{max(rates):.0f} | "
                     f"{fmt_cpu(r.cpu_per_gb(n))} | {r.other_load():.0%} |")
    rsync = by.get("rsync -a")
    if rsync and rsync.samples:
        base = rsync.median(n)
        lines.append("")
        lines.append(f"Ratios to rsync -a ({base:.0f} MB/s); goal {GOAL_RATIO}x:")
        lines.append("")
        lines.append("| drsync, parrallel-process | ship / rsync -a | backup / rsync -a "
                     "| backup+restore / rsync -a |")
        lines.append("|---:|---:|---:|---:|")
        for v, p in [(v, p) for v in bench.variants for p in bench.args.parallel]:
            cells = []
            for what in ("ship", "backup", "backup+restore"):
                r = by.get(f"{v.label} p={p} {what}")
                cells.append(f"{r.median(n) / base:.2f}x" if r and r.samples else "-")
            lines.append(f"| {v.label} p={p} | " + " | ".join(cells) + " |")
    # drsync phase detail
    detail = []
    for v, p in [(v, p) for v in bench.variants for p in bench.args.parallel]:
        r = by.get(f"{v.label} p={p} backup")
        if not r or not r.samples:
            continue
        ex = [s.extra for s in r.samples]
        med = {k: statistics.median(e[k] for e in ex) for k in ("build_s", "ship_s", "backup_s", "restore_s",
                                                              "reply_wait")}
        agent = [e["agent"] for e in ex if e["agent"]]
        a = {k: statistics.median(x[k] for x in agent) for k in agent[0]} if agent else {}
        gb = n / 1e9
        build_cpu = _mean_cpu([e["cpu_build"] for e in ex], gb)
        both = by[f"{v.label} p={p} backup+restore"].samples
        restore_cpu = _mean_cpu([s.extra["cpu_restore"] for s in both], gb)
        other = med["backup_s"] - med["build_s"] - med["ship_s"]
        detail.append(
            f"| {v.label} p={p} | {med['backup_s']:.1f} = {med['build_s']:.1f} bundle + "
            f"{med['ship_s']:.1f} ship + {other:.1f} other | {med['restore_s']:.1f} | "
            f"{med['reply_wait']:.1f} | "
            f"{a.get('put', 0):.1f} (fsync {a.get('put_fsync', 0):.1f}, hash {a.get('put_hash', 0):.1f}) | "
            f"{fmt_cpu(build_cpu, 2)} | {fmt_cpu(restore_cpu, 2)} |")
    if detail:
        lines += ["", "drsync, median seconds per round, and CPU s per GB of bundling and restore:",
                  "",
                  "| drsync | backup s | restore s | sender waits for replies s (sum of threads) | "
                  "agent op_put s (of which fsync, re-read+hash) | CPU bundling | CPU restore |",
                  "|---:|---|---:|---:|---|---|---|", *detail]
    ciphers = extras.get("ciphers")
    if ciphers:
        lines += ["", "One raw paramiko channel (`cat > /dev/null`), "
                  f"{bench.args.cipher_mb} MiB from memory, best of 2; `makefile` = 1 MiB writes to "
                  "`makefile_stdin` (drsync's Link), `sendall` = "
                  "4 MiB memoryviews to `Channel.sendall`:", "",
                  "| cipher | write path | negotiated | MB/s | CPU s per GB |", "|---|---|---|---:|---|"]
        for c in ciphers:
            if "case" in c:
                lines.append(f"| {c['case']} | {c['path']} | {c['negotiated']} | {c['mbps']:.0f} | "
                             f"{fmt_cpu(c['cpu'])} |")
        chacha = next((c["chacha20"] for c in ciphers if "chacha20" in c), None)
        lines.append("")
        lines.append(f"chacha20-poly1305 in this paramiko: {'yes' if chacha else 'no'}; "
                     f"OpenSSH client default: {extras.get('openssh_cipher')}; "
                     f"drsync's Link negotiates: {extras.get('drsync_cipher')}.")
    prof = extras.get("profile")
    if prof:
        if "error" in prof:
            lines += ["", f"py-spy: {prof['error']}"]
        for side in ("sender", "agent"):
            s = prof.get(side)
            if not s:
                continue
            lines += ["", f"py-spy --native, drsync {side} (p=1, {s['samples']} busy thread samples at "
                      f"100 Hz, {s['idle']} idle ones dropped): share by code path", ""]
            lines += [f"- {pct:.0f}% {label}" for label, pct in s["groups"].items() if pct >= 0.5]
            lines += ["", "hottest Python lines (-> native leaf):", ""]
            lines += [f"- {pct:.1f}% {name}" for pct, name in s["top"]]
    return "\n".join(lines)


def _mean_cpu(cpus: list[dict[str, float]], gb: float) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    for c in cpus:
        for k, v in c.items():
            total[k] += v
    return {k: v / len(cpus) / gb for k, v in sorted(total.items(), key=lambda kv: -kv[1])}


# ---------------------------------------------------------------- main


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_sample":
        _sampler_main(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024, help="table size in MiB (default 1024)")
    ap.add_argument("--files", type=int, default=8, help="Parquet files in the table (default 8)")
    ap.add_argument("--quick", action="store_true", help="256 MiB table, for a fast check")
    ap.add_argument("--reps", type=int, default=3, help="runs per method (median reported)")
    ap.add_argument("--parallel", default="1,2,4", help="drsync parrallel-process values (default 1,2,4)")
    ap.add_argument("--only", default=",".join(METHODS), help=f"methods to run, of {','.join(METHODS)}")
    ap.add_argument("--no-profile", action="store_true", help="skip py-spy and the cipher matrix")
    ap.add_argument("--cipher-mb", type=int, default=256, help="MiB sent per cipher case (default 256)")
    ap.add_argument("--drsync-src", help="run drsync (CLI and agent) from this source tree (PYTHONPATH)")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL=[DIR][,VAR=VALUE...]",
                    help="measure this drsync too, side by side (repeatable): the tree DIR (empty: this "
                         "checkout) with these environment variables, for the CLI and the agent")
    ap.add_argument("--workdir", help="parent of the temporary directory (default: the system's)")
    ap.add_argument("--markdown", help="also write the result tables to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--max-other", type=float, default=0.10, metavar="SHARE",
                    help="repeat a measurement (twice at most) when other processes used more than this "
                         "share of the machine's CPUs meanwhile (default 0.10)")
    ap.add_argument("--wait-idle", type=float, default=0.0, metavar="S",
                    help="before each measurement, wait up to S s for other work on the machine to stop")
    args = ap.parse_args()
    if args.quick:
        args.size_mb = 256
        args.cipher_mb = min(args.cipher_mb, 128)
    args.parallel = [int(x) for x in args.parallel.split(",") if x]
    only = set(args.only.split(","))
    if args.no_profile:
        only -= {"profile", "ciphers"}
    if unknown := only - set(METHODS):
        ap.error(f"unknown method(s): {', '.join(sorted(unknown))}")
    sys.path.insert(0, str(REPO))
    if args.drsync_src:
        sys.path.insert(0, str(Path(args.drsync_src).resolve()))
    parse_variants(args)  # fail early on a bad --variant
    # SIGTERM (and SIGINT, which a background job ignores) must still clean up: SystemExit runs `finally`
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="drsync-sshbench-", dir=args.workdir))
    bench: Bench | None = None
    try:
        bench = Bench(args, work)
        info = machine_info()
        print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()), flush=True)
        bench.setup_table()
        rows = run_all(bench, only)
        extras: dict[str, Any] = {}
        if "ciphers" in only:
            print("cipher matrix ...", flush=True)
            extras["ciphers"] = bench.ciphers()
            extras["openssh_cipher"] = openssh_default_cipher(bench)
            extras["drsync_cipher"] = drsync_cipher(bench)
        if "profile" in only:
            print("py-spy profile of one drsync round (p=1) ...", flush=True)
            extras["profile"] = bench.profile()
        text = report(bench, rows, extras)
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        head = (f"`{shlex.join(['.venv/bin/python', 'bench/ssh_throughput.py', *sys.argv[1:]])}`, {when}, "
                f"{bench.nbytes / MB:.0f} MB table ({args.files} files), {args.reps} runs each, "
                f"total {time.monotonic() - started:.0f} s\n\n"
                + "\n".join(f"- {k}: {v}" for k, v in info.items()))
        print("\n" + head + "\n\n" + text)
        if args.markdown:
            Path(args.markdown).write_text(head + "\n\n" + text + "\n")
    finally:
        if bench is not None:
            bench.sampler.stop()
            bench.srv.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            with contextlib.suppress(Exception):
                rmtree(work)
            shutil.rmtree(work, ignore_errors=True)


def drsync_cipher(bench: Bench) -> str:
    """What drsync's own SSH link negotiates with this sshd."""
    from drsync.config import load_settings
    from drsync.transport.ssh import SshTransport

    base, cfg, _ = bench.sites("drsync-cipher", 1, bench.variants[0])
    try:
        t = SshTransport(load_settings(cfg))
        try:
            link = t._idle[0]
            return _negotiated(link.client.get_transport())
        finally:
            t.close()
    finally:
        rmtree(base)


def run_all(bench: Bench, only: set[str]) -> list[Row]:
    rows: list[Row] = []
    plan: list[tuple[str, Callable[[], Sample]]] = []
    if "pipe" in only:
        plan += [("raw pipe (cat | ssh 'cat > /dev/null')", bench.pipe),
                 ("raw pipe, ssh -c aes128-gcm", lambda: bench.pipe("aes128-gcm@openssh.com"))]
    if "scp" in only:
        plan.append(("scp -r", bench.scp))
    if "rsync" in only:
        plan += [("rsync -a", bench.rsync), ("rsync -a --fsync", lambda: bench.rsync("--fsync"))]
    if "paramiko" in only:
        plan.append(("paramiko, one SFTP stream (putfo)", bench.paramiko_sftp))
    by: dict[str, Row] = {name: Row(name, "reference") for name, _ in plan}
    rows += by.values()
    if "drsync" in only:
        for v, p in [(v, p) for v in bench.variants for p in bench.args.parallel]:
            for what in ("ship", "backup", "backup+restore"):
                name = f"{v.label} p={p} {what}"
                by[name] = Row(name, "drsync")
                rows.append(by[name])
    for rep in range(bench.args.reps):
        for name, fn in plan:
            s = undisturbed(bench, name, lambda f: (f(),), fn)[0]
            by[name].samples.append(s)
            print(f"rep {rep + 1}: {name:42} {bench.nbytes / s.seconds / MB:7.1f} MB/s  {s.seconds:6.2f} s  "
                  f"CPU/GB: {fmt_cpu({k: v / (bench.nbytes / 1e9) for k, v in s.cpu.items()})}", flush=True)
        if "drsync" in only:
            for v, p in [(v, p) for v in bench.variants for p in bench.args.parallel]:
                ship, backup, both = undisturbed(bench, f"{v.label} p={p}", bench.drsync_round, v, p, rep)
                for what, s in (("ship", ship), ("backup", backup), ("backup+restore", both)):
                    by[f"{v.label} p={p} {what}"].samples.append(s)
                e = ship.extra
                print(f"rep {rep + 1}: {v.label} p={p}: ship {bench.nbytes / ship.seconds / MB:6.1f} MB/s, "
                      f"backup {bench.nbytes / backup.seconds / MB:6.1f}, backup+restore "
                      f"{bench.nbytes / both.seconds / MB:6.1f}  (bundle {e['build_s']:.1f} s, ship "
                      f"{e['ship_s']:.1f} s, backup {e['backup_s']:.1f} s, restore {e['restore_s']:.1f} s; "
                      f"ship CPU/GB: {fmt_cpu({k: v / (bench.nbytes / 1e9) for k, v in ship.cpu.items()})})",
                      flush=True)
    return rows


def undisturbed(bench: Bench, name: str, fn: Callable[..., tuple[Sample, ...]],
                *args: Any) -> tuple[Sample, ...]:
    """Run a measurement; if other work took more than --max-other of the machine meanwhile, wait for
    quiet (--wait-idle) and run it again, up to twice."""
    ncpu = os.cpu_count() or 1
    for attempt in range(3):
        samples = fn(*args)
        last = samples[-1]
        other = last.cpu.get(OTHER, 0.0) / (last.seconds * ncpu)
        if other <= bench.args.max_other or attempt == 2:
            return samples
        print(f"  {name}: other work took {other:.0%} of the machine meanwhile; measuring again", flush=True)
        settle(max(bench.args.wait_idle, 30.0))
    raise AssertionError("unreachable")


if __name__ == "__main__":
    main()
