"""Continuous mode (issue #14) through a role change: `drsync switchover` while two daemons in
replication-mode=continuous are shipping a stream of commits loses nothing.

Two writers: an unprivileged process (mode bits, the fence, do not stop root) appending one row
with a unique id per commit to `app.main.events` and printing `ok <id>` once the commit is
acknowledged, and a root thread committing round robin to three demo tables until just before
the switchover. Every wait is on a condition, with generous timeouts for a busy machine."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from drsync.demo import TABLES, create_sample_warehouse, table_dir
from drsync.site.warehouse import discover_tables
from tests.helpers import REPO, drsync, duck, rows
from tests.integration.test_continuous import CONTINUOUS, Daemon, _rows_like, standby_version
from tests.integration.test_daemon import _caught_up, _site_with_ports, wait_for, wait_on_swapped
from tests.integration.test_switchover import DROP, EVENTS, USER, WRITER, _ids

TOKEN = "cont-roles-token"
# Commits ship by the watch; the schedules are rescans, 10 minutes apart so that none runs during
# the test: after the switchover no commit comes, and the daemons must still follow the role
# change (they look for one every few seconds, not only after a pass).
RESCAN = "backup-exec-time-interval=10m\nrestore-interval=10m\n"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def open_dir(open_sites: Any) -> Iterator[Path]:
    """A directory the unprivileged writer can reach (open_sites makes the user and cleans up)."""
    yield Path(open_sites.base).parent


def test_switchover_in_continuous_mode_loses_nothing(open_dir: Path) -> None:
    import pwd

    work = open_dir / "continuous"
    work.mkdir(mode=0o755)
    token = work / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    sites, p_port, s_port = _site_with_ports(work, RESCAN + CONTINUOUS + f"api-token-file={token}\n")
    create_sample_warehouse(sites.primary, rows=20)
    write_deltalake(str(table_dir(sites.primary, EVENTS)),
                    pa.table({"id": pa.array([0], pa.int64()), "note": ["seed"]}))
    uid = pwd.getpwnam(USER).pw_uid
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(sites.primary)], check=True)
    for reachable in (work, sites.base, sites.base / "primary"):
        os.chmod(reachable, 0o755)

    daemons: list[Daemon] = []
    for role, port in (("standby", s_port), ("primary", p_port)):
        d = Daemon(sites.config, role, port, work)
        d.env = {}
        d.start()
        daemons.append(d)
    standby, primary = daemons
    stop_writer = sites.base / "stop-writer"
    writer: subprocess.Popen[str] | None = None
    stop_root = threading.Event()
    try:
        wait_for("first set restored", lambda: _caught_up(sites), timeout=120)
        assert primary.get("/status")["replication_mode"] == "continuous"
        assert standby.get("/status")["replication_mode"] == "continuous"

        env = {"PATH": os.environ.get("PATH", ""), "HOME": "/tmp", "PYTHONPATH": str(REPO)}
        writer = subprocess.Popen(
            [sys.executable, "-c", DROP + textwrap.dedent(WRITER), str(table_dir(sites.primary, EVENTS)),
             str(stop_writer)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        names = TABLES[:3]
        paths = {n: str(table_dir(sites.primary, n)) for n in names}
        batch = {n: _rows_like(paths[n], 2) for n in names}

        def stream() -> None:  # root commits, round robin, until just before the switchover
            i = 0
            while not stop_root.wait(0.1):
                write_deltalake(paths[names[i % len(names)]], batch[names[i % len(names)]], mode="append")
                i += 1

        root = threading.Thread(target=stream, daemon=True)
        root.start()
        # commits are flowing and the continuous daemons are shipping them as they come
        wait_for("events shipped continuously", lambda: standby_version(sites, EVENTS) >= 5, timeout=120)
        wait_for("root commits shipped continuously",
                 lambda: all(standby_version(sites, n) >= 3 for n in names), timeout=120)
        stop_root.set()
        root.join()
        final = {n: int(DeltaTable(paths[n]).version()) for n in names}

        # the unprivileged writer goes on committing through the switchover
        sw = drsync("switchover", "-c", str(sites.config), timeout=240)
        stop_writer.touch()
        out, errs = writer.communicate(timeout=60)
        assert sw.returncode == 0, sw.stdout + sw.stderr + primary.log + standby.log
        assert "switchover done at role epoch 1" in sw.stdout

        acked = {int(line.split()[1]) for line in out.splitlines() if line.startswith("ok ")}
        failed = [line for line in out.splitlines() if line.startswith("fail ")]
        assert len(acked) >= 5, out + errs
        # a write after the fence fails cleanly and none is acknowledged after a failure
        assert all("ermission denied" in line for line in failed), "\n".join(failed)
        assert all(int(line.split()[1]) > max(acked) for line in failed), out

        # Every acknowledged commit is on the new primary (the old standby); nothing else is.
        assert _ids(table_dir(sites.standby, EVENTS)) == acked | {0}
        for name, version in final.items():
            assert int(DeltaTable(str(table_dir(sites.standby, name))).version()) >= version, name
        # Every table reads on the new primary (deltalake and DuckDB) and equals the old primary.
        con = duck()
        names_new = [t.name for t in discover_tables(sites.standby)]
        assert names_new == [t.name for t in discover_tables(sites.primary)]
        assert EVENTS in names_new and set(TABLES) <= set(names_new)
        for name in names_new:
            DeltaTable(str(table_dir(sites.standby, name))).to_pyarrow_table()
            on_new = rows(con, table_dir(sites.standby, name))
            assert on_new == rows(con, table_dir(sites.primary, name)), name

        # The daemons follow into the swapped file (transport=local: they exchange ports), still
        # continuous, and the new direction verifies clean.
        swapped = sites.config.with_name("sw_backupRestore.ini")
        wait_on_swapped([(primary, s_port), (standby, p_port)], swapped, AUTH, timeout=120)
        for d in (primary, standby):
            assert d.http.get("/status", headers=AUTH).json()["replication_mode"] == "continuous"
        verify = drsync("verify", "-c", str(swapped))
        assert verify.returncode == 0, verify.stdout + verify.stderr
        for d in (primary, standby):
            assert "Traceback" not in d.log, d.log
    finally:
        stop_root.set()
        stop_writer.touch()
        if writer is not None and writer.poll() is None:
            try:
                writer.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                writer.kill()
        for d in daemons:
            d.stop()
            d.http.close()
            print(f"--- {d.role} daemon log:\n{d.log if d.err.exists() else '(none)'}")
