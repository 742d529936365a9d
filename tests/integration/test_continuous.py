"""Continuous mode (issue #14) with two real daemons (transport=local), real Delta writers and
the deltalake reader on the standby.

The schedules are set far away (10m) unless a test needs the rescan: a commit that reaches the
standby within the generous timeouts can only have been shipped by the watch and the trigger.
Every wait is on a condition, never on the schedule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from drsync.demo import TABLES, create_sample_warehouse, table_dir
from drsync.site.state import PrimaryState, load_state
from tests.helpers import Sites, drsync
from tests.integration.test_daemon import DaemonProcess, _caught_up, _site_with_ports, wait_for

FAR = "backup-exec-time-interval=10m\nrestore-interval=10m\n"
CONTINUOUS = "replication-mode=continuous\ncontinuous-min-interval=200ms\n"


class Daemon(DaemonProcess):
    """A daemon on its configured schedule (no --tick), with extra environment."""

    env: dict[str, str]

    def start(self) -> None:
        self.err = self.workdir / f"{self.role}-{time.monotonic_ns()}.stderr"
        env = {k: v for k, v in os.environ.items() if k != "DRSYNC_DEBUG"} | self.env
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "drsync", "daemon", "-c", str(self.config), "--role", self.role],
                stdout=subprocess.DEVNULL, stderr=err, env=env)
        wait_for(f"{self.role} API", lambda: self.http.get("/status").status_code == 200, timeout=60)


@pytest.fixture
def pair(tmp_path: Path) -> Any:
    started: list[Daemon] = []

    def launch(extra: str, env: dict[str, str] | None = None) -> tuple[Sites, Daemon, Daemon]:
        sites, p_port, s_port = _site_with_ports(tmp_path, extra)
        create_sample_warehouse(sites.primary, rows=20)
        for role, port in (("standby", s_port), ("primary", p_port)):
            d = Daemon(sites.config, role, port, tmp_path)
            d.env = env or {}
            d.start()
            started.append(d)
        wait_for("first set restored", lambda: _caught_up(sites), timeout=120)
        return sites, started[-1], started[-2]

    yield launch
    for d in started:
        d.stop()
        d.http.close()
        print(f"--- {d.role} daemon log:\n{d.log if d.err.exists() else '(none)'}")


def commit(sites: Sites, name: str, n: int = 1) -> int:
    """Append one small commit to the table `name` on the primary; its new version."""
    path = str(table_dir(sites.primary, name))
    write_deltalake(path, _rows_like(path, n), mode="append")
    return int(DeltaTable(path).version())


def _rows_like(path: str, n: int) -> pa.Table:
    """n rows shaped like the table's first rows (the demo tables differ in schema)."""
    sample = DeltaTable(path).to_pyarrow_table().slice(0, 1)
    return pa.concat_tables([sample] * n)


def standby_version(sites: Sites, name: str) -> int:
    try:
        return int(DeltaTable(str(table_dir(sites.standby, name))).version())
    except Exception:
        return -1


def test_a_commit_reaches_the_standby_in_seconds_without_a_schedule(pair: Any) -> None:
    sites, primary, standby = pair(FAR + CONTINUOUS)
    assert primary.get("/status")["replication_mode"] == "continuous"
    assert standby.get("/status")["replication_mode"] == "continuous"
    for name in TABLES[:3]:
        version = commit(sites, name)
        started = time.monotonic()
        wait_for(f"{name} v{version} on the standby",
                 lambda n=name, v=version: standby_version(sites, n) >= v, timeout=60, every=0.05)
        print(f"{name} v{version}: {time.monotonic() - started:.2f} s")
    assert drsync("verify", "-c", str(sites.config)).returncode == 0


def test_a_missed_event_is_shipped_by_the_rescan(pair: Any, tmp_path: Path) -> None:
    pause = tmp_path / "watch-paused"
    # both daemons drop their events: the rescans are the schedules, 10 s apart
    sites, _, _ = pair("backup-exec-time-interval=10s\nrestore-interval=10s\n" + CONTINUOUS,
                       env={"DRSYNC_WATCH_PAUSE_FILE": str(pause)})
    pause.touch()  # the watcher drops every event from now on, as if inotify had missed them
    name = TABLES[1]
    version = commit(sites, name)
    wait_for("the rescan shipped it", lambda: standby_version(sites, name) >= version, timeout=90)
    pause.unlink()
    version = commit(sites, name)  # and the watch works again
    wait_for("the watch shipped it", lambda: standby_version(sites, name) >= version, timeout=60)


def test_a_burst_of_1000_commits_drains_with_a_bounded_set_count(pair: Any) -> None:
    sites, primary, _ = pair(FAR + CONTINUOUS)
    most, stop = [0], threading.Event()

    def watch_backlog() -> None:  # sets cut but not restored, sampled throughout the burst
        while not stop.is_set():
            try:
                state = load_state(sites.primary_meta, PrimaryState)
                most[0] = max(most[0], len(state.unshipped) + len(state.shipped))
            except Exception:
                pass  # a state file read mid-rename on a busy machine: the next sample counts
            time.sleep(0.05)

    sampler = threading.Thread(target=watch_backlog, daemon=True)
    sampler.start()
    names = TABLES[:5]
    paths = {n: str(table_dir(sites.primary, n)) for n in names}
    rows = {n: _rows_like(paths[n], 1) for n in names}
    keys_before = len(list((sites.primary_meta / "manifests").glob("*.manifest.json")))
    started = time.monotonic()
    writers = [threading.Thread(target=lambda n=n: [write_deltalake(paths[n], rows[n], mode="append")
                                                    for _ in range(200)]) for n in names]
    for w in writers:  # one writer per table, 5 x 200 commits, all at once
        w.start()
    for w in writers:
        w.join()
    burst = time.monotonic() - started
    final = {n: int(DeltaTable(paths[n]).version()) for n in names}
    wait_for("the burst drained", lambda: all(standby_version(sites, n) >= v for n, v in final.items()),
             timeout=180, every=0.2)
    stop.set()
    sampler.join()
    sets = len(list((sites.primary_meta / "manifests").glob("*.manifest.json"))) - keys_before
    print(f"1000 commits in {burst:.1f} s; {sets} sets; at most {most[0]} unrestored")
    assert most[0] <= 5  # the backlog limit (4) plus the set being shipped
    assert sets <= burst / 0.2 + 10  # coalesced: at most one set per continuous-min-interval
    assert "ERROR" not in primary.log and "Traceback" not in primary.log
    assert drsync("verify", "-c", str(sites.config)).returncode == 0


def test_switching_modes_with_sighup(pair: Any) -> None:
    sites, primary, standby = pair(FAR)  # scheduled, rounds 10 minutes apart
    assert primary.get("/status")["replication_mode"] == "scheduled"
    text = sites.config.read_text()
    sites.config.write_text(text + CONTINUOUS)
    for d in (primary, standby):
        d.signal(signal.SIGHUP)
    wait_for("continuous", lambda: primary.get("/status")["replication_mode"] == "continuous"
             and standby.get("/status")["replication_mode"] == "continuous")
    name = TABLES[2]
    version = commit(sites, name)
    wait_for("shipped continuously", lambda: standby_version(sites, name) >= version, timeout=60)

    sites.config.write_text(text)  # back to scheduled: commits wait for the (far) schedule
    for d in (primary, standby):
        d.signal(signal.SIGHUP)
    wait_for("scheduled", lambda: primary.get("/status")["replication_mode"] == "scheduled")
    version = commit(sites, name)
    time.sleep(5)
    assert standby_version(sites, name) < version


def test_kill_9_of_either_daemon_during_a_stream_converges(pair: Any) -> None:
    sites, primary, standby = pair(FAR + CONTINUOUS)
    names = TABLES[:3]
    paths = {n: str(table_dir(sites.primary, n)) for n in names}
    rows = {n: _rows_like(paths[n], 2) for n in names}
    stop = threading.Event()

    def stream() -> None:  # a few commits a second, round robin, until told to stop
        i = 0
        while not stop.is_set():
            write_deltalake(paths[names[i % len(names)]], rows[names[i % len(names)]], mode="append")
            i += 1
            time.sleep(0.1)

    writer = threading.Thread(target=stream, daemon=True)
    writer.start()
    try:
        for victim in (primary, standby, primary):
            wait_for("sets flowing", lambda: _caught_up(sites), timeout=60)
            time.sleep(1.5)  # mid-stream: rounds and restores are running back to back
            assert victim.proc is not None
            victim.proc.kill()  # kill -9: no finally, no flush
            victim.proc.wait()
            victim.start()
    finally:
        stop.set()
        writer.join()
    final = {n: int(DeltaTable(paths[n]).version()) for n in names}
    wait_for("converged", lambda: all(standby_version(sites, n) >= v for n, v in final.items()), timeout=120)
    for name in TABLES:  # every table reads, at the version the primary has
        on_standby = DeltaTable(str(table_dir(sites.standby, name)))
        assert on_standby.to_pyarrow_table().num_rows == \
            DeltaTable(str(table_dir(sites.primary, name))).to_pyarrow_table().num_rows, name
    verify = drsync("verify", "-c", str(sites.config))
    assert verify.returncode == 0, verify.stdout + verify.stderr
