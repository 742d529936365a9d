"""Kill drsync with SIGKILL at every named crash point (drsync/faults.py) and prove recovery
(moved here from tests/integration/test_crash.py).

Each test first runs the operation once with DRSYNC_CRASH_COUNT to enumerate the crash points
the run passes, then, for each i, puts the sites back exactly as they were before that run,
kills a fresh run at the i-th point (DRSYNC_CRASH_AT=*:i) and checks:

* restore killed (at every kind of point, and with DRSYNC_SOAK=1 at every point): every
  standby table is readable by DuckDB at its latest
  version, with the rows the primary had at that same version, and at the version the newest
  published barrier map names. At a spread of MAX_KILLS points (all with DRSYNC_SOAK=1) also:
  re-running converges to the barrier (content, barrier map, read-only modes, no staging
  left), `verify` passes, and one more restore says so and changes nothing.
* backup killed: whatever reached the inbox restores; the recovery round killed again at the
  same point; then backup + restore converge to content equal with the primary,
  `verify --deep` passes, the chain of sets in both inboxes has no gap, and no set directory
  of a killed round is left in the primary's media.

"The rows the primary had at version v" are captured on the primary by time travel right
after each write: once VACUUM ran, older versions can no longer be read there.

The kills run on two workers, each with its own copy of the sites (the work is subprocesses).
`make test` kills a restore at the first, middle and last occurrence of every kind of point
(a kind repeats per chunk and per file: the 25 `extract.chunk` of one run share their code)
plus the spread; DRSYNC_SOAK=1 (`make soak`) kills at every point, gives every point the full
treatment, kills the recovery run of a killed restore too, and runs one more workload.
DRSYNC_MAX_KILLS=n overrides the spread.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from drsync.demo import ROUND_WRITES, TABLES, create_sample_warehouse, table_dir
from drsync.errors import TableFormatError
from drsync.fsutil import rmtree_force
from drsync.site.layout import DRSYNC_DIR, LOCK_DIR, MANIFEST_DIR
from drsync.site.locks import lock_holder, operation_lock
from drsync.site.state import StandbyState
from drsync.tableformat.delta import list_log
from tests.faults.conftest import Reliability
from tests.helpers import Sites, capture_versions, drsync, duck, latest_version, read_manifests, rows

pytestmark = pytest.mark.crash

SOAK = os.environ.get("DRSYNC_SOAK") == "1"
MAX_KILLS = int(os.environ.get("DRSYNC_MAX_KILLS", "0")) or (10_000 if SOAK else 12)

_append, _overwrite, _update_delete, _merge, _schema_change, _optimize_vacuum = ROUND_WRITES
Rows = list[tuple[Any, ...]]
Expected = dict[str, dict[int, Rows]]


# --- helpers ----------------------------------------------------------------------------


def _cli(sites: Sites, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return drsync(*args, "-c", str(sites.config), env=env, timeout=120)


def _out(p: subprocess.CompletedProcess[str]) -> str:
    return f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"


def _no_traceback(p: subprocess.CompletedProcess[str]) -> None:
    text = p.stdout + p.stderr
    assert "internal error" not in text and "Traceback" not in text, _out(p)


def _spread(n: int, k: int) -> list[int]:
    """k distinct points of 1..n, evenly spread, always including the first and the last."""
    if n <= k:
        return list(range(1, n + 1))
    return sorted({1 + round(j * (n - 1) / (k - 1)) for j in range(k)})


def _every_kind(points: list[str], spread: set[int]) -> list[int]:
    """Kill points (1-based): with DRSYNC_SOAK=1 every one; else the first, middle and last
    occurrence of each kind of point, and the spread."""
    if SOAK:
        return list(range(1, len(points) + 1))
    at: dict[str, list[int]] = {}
    for i, name in enumerate(points, 1):
        at.setdefault(name, []).append(i)
    chosen = set(spread)
    for occurrences in at.values():
        chosen |= {occurrences[0], occurrences[len(occurrences) // 2], occurrences[-1]}
    return sorted(chosen)


def _count_points(sites: Sites, op: str, tmp: Path) -> list[str]:
    counter = tmp / f"{op}.points"
    counter.unlink(missing_ok=True)
    p = _cli(sites, op, env={"DRSYNC_CRASH_COUNT": str(counter)})
    assert p.returncode == 0, _out(p)
    return counter.read_text().split()


def _save(dirs: list[Path], aside: Path) -> None:
    """Copy `dirs` aside (modes and mtimes too: commit mtimes matter to Delta)."""
    rmtree_force(aside)
    aside.mkdir(parents=True)
    for i, d in enumerate(dirs):
        if d.exists():
            shutil.copytree(d, aside / str(i), symlinks=True)


def _reset(dirs: list[Path], aside: Path) -> None:
    """Put `dirs` back as `_save` found them (drsync makes replicated trees read-only)."""
    for i, d in enumerate(dirs):
        rmtree_force(d)
        if (aside / str(i)).exists():
            shutil.copytree(aside / str(i), d, symlinks=True)




def _log_top(table: Path) -> int | None:
    """Newest version in a table's `_delta_log` listing (a second opinion to deltalake's), or
    None when the directory holds no version yet."""
    try:
        return list_log(table).latest_version
    except TableFormatError:
        return None


def _check_readable(con: Any, sites: Sites, expected: Expected, floor: dict[str, int],
                    ceiling: dict[str, int], unreadable_on_primary: dict[str, set[int]],
                    what: str) -> None:
    """What a reader of the standby sees after a kill.

    * every table, at its latest version `v`: DuckDB reads it, rows equal to the primary's at
      `v` (a table whose first copy is under way may have no version yet: not a table yet);
    * every table at the version the newest published barrier map names (time travel).
    """
    latest: dict[str, int] = {}
    for name in TABLES:
        s = table_dir(sites.standby, name)
        top = _log_top(s)
        if top is None and floor[name] < 0:
            continue  # first copy under way, before its first log file: no version to read
        v = latest_version(s)
        assert v == top, f"{what}: {name}: deltalake says version {v}, the log listing {top}"
        assert floor[name] <= v <= ceiling[name], f"{what}: {name} at version {v}, outside " \
            f"{floor[name]}..{ceiling[name]}"
        try:
            got = rows(con, s)
        except Exception as e:
            why = ""
            if v in unreadable_on_primary[name]:
                why = (f" (version {v} could no longer be read on the primary either when the set "
                       "was collected: VACUUM had removed files it needs, so the set does not carry "
                       "them, yet restore exposes the version while it links the commits in order)")
            raise AssertionError(f"{what}: standby table {name} is not readable by DuckDB at its "
                                 f"latest version {v}{why}: {e}") from None
        assert v in expected[name], f"{what}: {name} version {v} was never readable on the primary"
        assert got == expected[name][v], f"{what}: {name} at version {v}: rows differ from the primary's"
        latest[name] = v
    maps = sorted((sites.standby / DRSYNC_DIR / "barriers").glob("*.json"))
    if maps:
        for name, bv in json.loads(maps[-1].read_text()).items():
            if latest.get(name) == bv:
                continue  # read just above
            try:
                got = rows(con, table_dir(sites.standby, name), version=bv)
            except Exception as e:
                raise AssertionError(f"{what}: {name} is not readable at version {bv} of the "
                                     f"published barrier map {maps[-1].name}: {e}") from None
            assert got == expected[name][bv], f"{what}: {name} at barrier version {bv} differs"


def _unreadable_on_primary(con: Any, warehouse: Path, expected: Expected) -> dict[str, set[int]]:
    """Versions (captured earlier) that the primary can no longer read now (VACUUM)."""
    out: dict[str, set[int]] = {}
    for name in TABLES:
        out[name] = set()
        for v in expected[name]:
            try:
                rows(con, table_dir(warehouse, name), version=v)
            except Exception:
                out[name].add(v)
    return out


def _tree(root: Path) -> dict[str, tuple[int, int, int, int]]:
    """Every entry under root: (mode, size, mtime_ns, inode); any rewrite changes it."""
    out: dict[str, tuple[int, int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, n))
            key = os.path.relpath(os.path.join(dirpath, n), root)
            out[key] = (st.st_mode, st.st_size if not stat.S_ISDIR(st.st_mode) else 0,
                        st.st_mtime_ns, st.st_ino)
    return out


def _assert_read_only(table: Path, what: str) -> None:
    for dirpath, dirnames, filenames in os.walk(table):
        for n in [".", *dirnames, *filenames]:
            p = os.path.join(dirpath, n)
            assert not os.lstat(p).st_mode & 0o222, f"{what}: {p} is writable after convergence"


def _standby_state(sites: Sites) -> dict[str, Any]:
    state = json.loads((sites.standby_meta / StandbyState.FILE).read_text())
    return {k: state[k] for k in ("last_key", "last_barrier_ms", "tables")}


def _chain(meta: Path) -> list[dict[str, Any]]:
    """Manifests of an inbox in key order; asserts each builds on the one before it."""
    ms = read_manifests(meta / MANIFEST_DIR)
    prior = None
    for m in ms:
        assert m["prior_key"] == prior, f"chain gap: set {m['key']} builds on {m['prior_key']}, " \
            f"the set before it in {meta / MANIFEST_DIR} is {prior}"
        prior = m["key"]
    return ms


def _converge_restore(sites: Sites, what: str) -> None:
    outs = []
    for _ in range(3):
        p = _cli(sites, "restore")
        _no_traceback(p)
        outs.append(_out(p))
        if p.returncode == 0:
            return
    raise AssertionError(f"{what}: restore did not converge in 3 runs:\n" + "\n".join(outs))


def _assert_converged(con: Any, sites: Sites, expected: Expected, barrier: dict[str, int], key: str,
                      what: str) -> None:
    for name in TABLES:
        s = table_dir(sites.standby, name)
        v = latest_version(s)
        assert v == barrier[name], f"{what}: {name} at version {v}, barrier is {barrier[name]}"
        assert rows(con, s) == expected[name][v], f"{what}: {name} differs from the primary"
        _assert_read_only(s, what)
    bmap = sites.standby / DRSYNC_DIR / "barriers" / f"{key}.json"
    assert json.loads(bmap.read_text()) == barrier, f"{what}: barrier map {bmap}"
    staging = sites.standby / DRSYNC_DIR / "staging"
    left = list(staging.iterdir()) if staging.exists() else []
    assert not left, f"{what}: staging left behind: {left}"
    assert _standby_state(sites)["last_key"] == key, what


def _clone(sites: Sites, dest: Path) -> Sites:
    """A copy of both sites under `dest`, with a config naming the copy's paths."""
    rmtree_force(dest)
    shutil.copytree(sites.base, dest, symlinks=True)
    config = dest / sites.config.name
    config.chmod(0o644)
    config.write_text(sites.config.read_text().replace(str(sites.base), str(dest)))
    return Sites(dest, config)


def _in_parallel(sites: Sites, tmp: Path, points: list[int], one: Callable[[Sites, Any, int], None]) -> None:
    """Run `one(sites, duckdb_connection, i)` for every i, spread over workers that each have
    their own copy of the sites (the runs are subprocesses: two cores run two at a time)."""
    n = max(1, min(os.cpu_count() or 1, 4 if SOAK else 2, len(points)))
    clones = [sites] + [_clone(sites, tmp / f"worker{k}") for k in range(1, n)]

    def work(k: int) -> None:
        con = duck()
        for i in points[k::n]:
            one(clones[k], con, i)

    with ThreadPoolExecutor(n) as pool:
        for f in [pool.submit(work, k) for k in range(n)]:
            f.result()


# --- 1. restore killed at every point ----------------------------------------------------

Write = Callable[[Path, int], str]


def _create(wh: Path, r: int) -> str:
    create_sample_warehouse(wh, rows=60)
    return "create the sample tables"


def _backup_here(wh: Path, r: int) -> str:
    """Marker in a round: run a backup here, so the killed restore applies several sets."""
    raise AssertionError("a marker, not a write")


# name: (writes replicated before the killed restore, or None if the killed restore is the
#        standby's first one; writes of the round the killed restore applies)
WORKLOADS: dict[str, tuple[list[Write] | None, list[Write]]] = {
    # The first restore: every table copied in full (table directories created by the restore),
    # two of them from a checkpoint (their older versions' files are vacuumed).
    "first-restore": (None, [_create, _append, _optimize_vacuum]),
    # Compaction + VACUUM first: the files it removes belong to versions the standby already
    # holds (deletions after the barrier map), then appends, DML, a merge and a schema change,
    # in two sets: kills in the second set find the first one committed.
    "vacuum-then-dml": ([_create, _append], [_optimize_vacuum, _append, _backup_here, _update_delete,
                                            _merge, _schema_change]),
    # VACUUM last: it removes files that intermediate versions of the same round added, before
    # the backup collects them.
    "dml-then-vacuum": ([_create], [_append, _update_delete, _merge, _schema_change, _optimize_vacuum]),
}
if SOAK:
    WORKLOADS["all-writes"] = ([_create, _append], [*ROUND_WRITES, _append, _optimize_vacuum])


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_restore_killed_at_every_point(sites: Sites, tmp_path: Path, workload: str,
                                      reliability: Reliability) -> None:
    rel = reliability("kill -9 of restore", "SIGKILL at each crash point of a restore (every step "
                      "boundary, each chunk of each staged file, every file installed), then an "
                      "independent DuckDB read of every standby table; re-run to convergence at a "
                      "spread of them")
    replicated, round_writes = WORKLOADS[workload]
    started = time.monotonic()
    con = duck()
    expected: Expected = {}
    writes = [*(replicated or []), *round_writes]
    for r, w in enumerate(replicated or [], 1):
        w(sites.primary, r)
    if replicated is not None:
        capture_versions(con, sites.primary, TABLES, expected)
        assert _cli(sites, "backup").returncode == 0
        assert _cli(sites, "restore").returncode == 0
        before = {n: latest_version(table_dir(sites.standby, n)) for n in TABLES}
        last_key = _standby_state(sites)["last_key"]
    else:
        before, last_key = dict.fromkeys(TABLES, -1), ""

    for r in range(len(replicated or []), len(writes)):
        if writes[r] is _backup_here:
            assert _cli(sites, "backup").returncode == 0
            continue
        writes[r](sites.primary, r + 1)
        capture_versions(con, sites.primary, TABLES, expected)
    unreadable = _unreadable_on_primary(con, sites.primary, expected)
    p = _cli(sites, "backup")
    assert p.returncode == 0, _out(p)
    new_sets = [m for m in _chain(sites.standby_meta) if m["key"] > last_key]
    assert len(new_sets) == 1 + round_writes.count(_backup_here)
    key, barrier = new_sets[-1]["key"], new_sets[-1]["versions"]
    assert barrier == {n: latest_version(table_dir(sites.primary, n)) for n in TABLES}
    tables = [t for m in new_sets for t in m["tables"]]
    if replicated is not None:
        assert any(t["deletions"] for t in tables), "the round should delete files"
    assert any(f["kind"] == "checkpoint" for t in tables for f in t["files"])

    aside = tmp_path / "standby-before-restore"
    _save([sites.base / "standby"], aside)
    points = _count_points(sites, "restore", tmp_path)
    _assert_converged(con, sites, expected, barrier, key, "uninterrupted restore")
    assert "restore.committed" in points and "apply.file" in points, points
    _reset([sites.base / "standby"], aside)

    # Every point: kill, then check what readers see. A spread of them (every one with
    # DRSYNC_SOAK=1): also re-run to convergence, verify, and check a further run is a no-op.
    failures: list[str] = []
    failed_points: set[int] = set()
    full = set(_spread(len(points), MAX_KILLS))

    def readable(s: Sites, con: Any, what: str, i: int) -> None:
        try:
            _check_readable(con, s, expected, before, barrier, unreadable, what)
        except AssertionError as e:
            failures.append(str(e))  # keep going: the report names every point that breaks
            failed_points.add(i)

    def kill_at(s: Sites, con: Any, i: int) -> None:
        what = f"[{workload}] restore killed at point {i}/{len(points)} ({points[i - 1]})"
        _reset([s.base / "standby"], aside)
        p = _cli(s, "restore", env={"DRSYNC_CRASH_AT": f"*:{i}"})
        assert p.returncode == -signal.SIGKILL, f"{what}: not killed: {_out(p)}"
        readable(s, con, what, i)
        if i not in full:
            return
        if SOAK:  # the recovery run killed too, earlier in its own run
            p = _cli(s, "restore", env={"DRSYNC_CRASH_AT": f"*:{max(1, i // 2)}"})
            assert p.returncode in (-signal.SIGKILL, 0), f"{what}, then at {i // 2}: {_out(p)}"
            readable(s, con, f"{what}, then at {max(1, i // 2)}", i)
        _converge_restore(s, what)
        _assert_converged(con, s, expected, barrier, key, what)
        v = _cli(s, "verify")
        assert v.returncode == 0, f"{what}: verify after the re-run: {_out(v)}"
        tree, state = _tree(s.standby), _standby_state(s)
        again = _cli(s, "restore")
        assert again.returncode == 0 and "nothing to restore" in again.stdout, f"{what}: {_out(again)}"
        assert _tree(s.standby) == tree and _standby_state(s) == state, \
            f"{what}: a restore with nothing to restore changed the standby"

    def counted(s: Sites, con: Any, i: int) -> None:
        with rel.trial():
            kill_at(s, con, i)
        if i in failed_points:
            rel.add(0, -1)

    kills = _every_kind(points, full)
    _in_parallel(sites, tmp_path, kills, counted)
    print(f"[{workload}] {len(points)} restore crash points {dict(Counter(points))}: killed at "
          f"{len(kills)} (every kind), re-run to convergence after {len(full)}; "
          f"{time.monotonic() - started:.1f} s")
    assert not failures, f"{len(failures)} of {len(kills)} kills left a table unreadable or " \
        "wrong:\n" + "\n".join(sorted(failures))


# --- 2. backup killed at every point -----------------------------------------------------


def test_backup_killed_at_every_point(sites: Sites, tmp_path: Path, reliability: Reliability) -> None:
    rel = reliability("kill -9 of backup and ship", "SIGKILL at a spread of the crash points of a "
                      "backup round (collect, each member packed into a bundle, each bundle written, "
                      "each chunk copied to the standby, manifest, commit); restore what arrived, "
                      "kill the recovery round too, then converge")
    started = time.monotonic()
    con = duck()
    expected: Expected = {}
    create_sample_warehouse(sites.primary, rows=60)
    capture_versions(con, sites.primary, TABLES, expected)
    assert _cli(sites, "backup").returncode == 0
    assert _cli(sites, "restore").returncode == 0
    before = {n: latest_version(table_dir(sites.standby, n)) for n in TABLES}
    for i, w in enumerate([_append, _update_delete, _merge, _schema_change, _optimize_vacuum], 1):
        w(sites.primary, i)
        capture_versions(con, sites.primary, TABLES, expected)
    head = {n: latest_version(table_dir(sites.primary, n)) for n in TABLES}
    unreadable = _unreadable_on_primary(con, sites.primary, expected)

    # The backup writes only drsync's own directories on both sites, never the primary's tables.
    def dirs(s: Sites) -> list[Path]:
        return [s.primary_meta, s.primary_media, s.base / "standby"]

    aside = tmp_path / "before-backup"
    _save(dirs(sites), aside)
    points = _count_points(sites, "backup", tmp_path)
    assert "backup.committed" in points and "backup.manifest_shipped" in points, points
    _reset(dirs(sites), aside)

    def kill_at(s: Sites, con: Any, i: int) -> None:
        what = f"backup killed at point {i}/{len(points)} ({points[i - 1]})"
        _reset(dirs(s), aside)
        p = _cli(s, "backup", env={"DRSYNC_CRASH_AT": f"*:{i}"})
        assert p.returncode == -signal.SIGKILL, f"{what}: not killed: {_out(p)}"
        # Whatever arrived in the inbox restores cleanly; tables stay readable throughout.
        r = _cli(s, "restore")
        _no_traceback(r)
        assert r.returncode == 0, f"{what}: restore of what arrived: {_out(r)}"
        _check_readable(con, s, expected, before, head, unreadable, what)
        # The recovery round killed at the same point of its own run (it may pass fewer points).
        p = _cli(s, "backup", env={"DRSYNC_CRASH_AT": f"*:{i}"})
        assert p.returncode in (-signal.SIGKILL, 0), f"{what}, recovery killed too: {_out(p)}"
        outs: list[str] = []
        for _ in range(3):
            b, r = _cli(s, "backup"), _cli(s, "restore")
            _no_traceback(b)
            _no_traceback(r)
            outs += [_out(b), _out(r)]
            if b.returncode == 0 and r.returncode == 0:
                break
        else:
            raise AssertionError(f"{what}: backup + restore did not converge:\n" + "\n".join(outs))
        chain = _chain(s.standby_meta)
        last = chain[-1]
        assert last["versions"] == head, f"{what}: last barrier {last['versions']} != {head}"
        _assert_converged(con, s, expected, head, last["key"], what)
        v = _cli(s, "verify", "--deep")
        assert v.returncode == 0, f"{what}: verify --deep: {_out(v)}"
        # A crashed attempt leaves nothing behind on the primary: every set it keeps is in the chain.
        keys = {m["key"] for m in _chain(s.primary_meta)}
        media = {d.name for d in s.primary_media.iterdir()}
        assert media <= keys, f"{what}: sets {sorted(media - keys)} in the media are in no chain"

    def counted(s: Sites, con: Any, i: int) -> None:
        with rel.trial():
            kill_at(s, con, i)

    kills = _spread(len(points), MAX_KILLS)
    _in_parallel(sites, tmp_path, kills, counted)
    print(f"{len(points)} backup crash points {dict(Counter(points))}: killed at {len(kills)}; "
          f"{time.monotonic() - started:.1f} s")


# --- 3. one backup at a time ---------------------------------------------------------------


@pytest.fixture
def lock_held(sites: Sites) -> Iterator[None]:
    with operation_lock(sites.primary_meta / LOCK_DIR, "backup"):
        yield


def test_second_backup_exits_at_once_naming_the_holder(sites: Sites, lock_held: None) -> None:
    create_sample_warehouse(sites.primary, rows=20)
    t = time.monotonic()
    p = _cli(sites, "backup")
    assert time.monotonic() - t < 20
    assert p.returncode == 1, _out(p)
    assert "already running" in p.stderr and f"pid {os.getpid()}" in p.stderr, _out(p)
    _no_traceback(p)
    assert not (sites.primary_meta / MANIFEST_DIR).exists(), "a refused backup must not build a set"


def test_second_backup_while_a_slow_one_runs(sites: Sites) -> None:
    """A real running backup (a long barrier grace keeps it busy) holds the lock."""
    create_sample_warehouse(sites.primary, rows=20)
    slow = sites.base / "slow.ini"
    slow.write_text(sites.config.read_text().replace("barrier-grace=0s", "barrier-grace=6s"))
    first = subprocess.Popen([sys.executable, "-m", "drsync", "backup", "-c", str(slow)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while lock_holder(sites.primary_meta / LOCK_DIR, "backup") != first.pid:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first backup never took its lock"
            time.sleep(0.05)
        p = _cli(sites, "backup")
        # Refused while the first still runs: it did not wait for the lock.
        assert first.poll() is None, "the first backup ended before the second was refused"
        assert p.returncode == 1, _out(p)
        assert "already running" in p.stderr and f"pid {first.pid}" in p.stderr, _out(p)
        _no_traceback(p)
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, out + err
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    # The lock is free again: the next round runs.
    assert _cli(sites, "backup").returncode == 0
