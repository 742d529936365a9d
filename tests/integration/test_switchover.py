"""Switchover under a concurrent writer, switching back, and a switchover killed mid-way.

The writer is a separate process running as an unprivileged user who owns the primary
warehouse: mode bits (the fence) do not stop root, so a root writer would prove nothing. It
appends one row with a unique id per commit and prints `ok <id>` only after write_deltalake
returned (the commit is acknowledged) or `fail <id> <error>`.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from drsync.demo import create_sample_warehouse, table_dir
from drsync.site.warehouse import discover_tables
from tests.conftest import UNPRIVILEGED_USER
from tests.helpers import REPO, Sites, drsync, duck, rows

USER = UNPRIVILEGED_USER
EVENTS = "app.main.events"

DROP = f"""
import os, pwd, sys, time
import pyarrow as pa, pyarrow.parquet, deltalake  # noqa
import encodings.utf_8_sig, encodings.idna, encodings.ascii, encodings.latin_1  # noqa
pw = pwd.getpwnam({USER!r})
os.setgroups([]); os.setgid(pw.pw_gid); os.setuid(pw.pw_uid)
assert os.geteuid() == pw.pw_uid
"""

WRITER = """
from deltalake import write_deltalake
table, stop = sys.argv[1], sys.argv[2]
i = 0
while not os.path.exists(stop):
    i += 1
    try:
        write_deltalake(table, pa.table({"id": pa.array([i], pa.int64()), "note": ["w"]}), mode="append")
        print(f"ok {i}", flush=True)
    except Exception as e:
        print(f"fail {i} {type(e).__name__}: {str(e)[-300:]}".replace("\\n", " "), flush=True)
    time.sleep(0.02)
"""




def _round(config: Path) -> None:
    drsync("backup", "-c", str(config), check=True)
    drsync("restore", "-c", str(config), check=True)


def _assert_equal(a: Path, b: Path) -> None:
    con = duck()
    names = [t.name for t in discover_tables(a)]
    assert names == [t.name for t in discover_tables(b)]
    for name in names:
        assert rows(con, table_dir(a, name)) == rows(con, table_dir(b, name)), name


def _ids(table: Path) -> set[int]:
    return {r[0] for r in rows(duck(), table)}


def _setup(sites: Sites) -> None:
    create_sample_warehouse(sites.primary, rows=20)
    write_deltalake(str(table_dir(sites.primary, EVENTS)),
                    pa.table({"id": pa.array([0], pa.int64()), "note": ["seed"]}))
    uid = pwd.getpwnam(USER).pw_uid
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(sites.primary)], check=True)
    os.chmod(sites.base, 0o755)
    os.chmod(sites.base / "primary", 0o755)
    _round(sites.config)


def test_switchover_under_a_concurrent_writer_then_back(open_sites: Sites) -> None:
    sites = open_sites
    _setup(sites)
    stop = sites.base / "stop-writer"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/tmp", "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen(
        [sys.executable, "-c", DROP + textwrap.dedent(WRITER), str(table_dir(sites.primary, EVENTS)),
         str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while len(_ids(table_dir(sites.primary, EVENTS))) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)  # the writer is committing
        sw = drsync("switchover", "-c", str(sites.config))
        time.sleep(1.0)  # the writer keeps trying against the old primary, now read-only
    finally:
        stop.touch()
        out, errs = writer.communicate(timeout=60)
    assert sw.returncode == 0, sw.stdout + sw.stderr
    assert "switchover done at role epoch 1" in sw.stdout
    acked = {int(line.split()[1]) for line in out.splitlines() if line.startswith("ok ")}
    failed = [line for line in out.splitlines() if line.startswith("fail ")]
    assert len(acked) >= 3, out + errs
    # Writers after the fence fail cleanly, with a permission error, and commit nothing.
    assert failed, "no write failed after the fence:\n" + out
    assert all("ermission denied" in line for line in failed), "\n".join(failed)
    assert all(int(line.split()[1]) > max(acked) for line in failed)  # none acked after a failure
    new_primary = table_dir(sites.standby, EVENTS)
    # Every acknowledged commit is on the new primary; nothing else is.
    assert _ids(new_primary) == acked | {0}
    _assert_equal(sites.primary, sites.standby)

    # Roles are swapped on both sides; the old config's commands are refused.
    assert (sites.standby_meta / "primary-state.json").exists()
    assert (sites.primary_meta / "standby-state.json").exists()
    assert not (sites.primary_meta / "primary-state.json").exists()
    refused = drsync("backup", "-c", str(sites.config))
    assert refused.returncode == 1 and "belongs to the standby" in refused.stderr
    sw_config = sites.config.with_name("sw_backupRestore.ini")
    assert sw_config.exists()

    # Reverse replication: writes on the new primary reach the old one, incrementally.
    write_deltalake(str(new_primary), pa.table({"id": pa.array([10_000], pa.int64()), "note": ["rev"]}),
                    mode="append")
    back = drsync("backup", "-c", str(sw_config), check=True)
    assert "1 of 11 tables changed" in back.stdout, back.stdout
    drsync("restore", "-c", str(sw_config), check=True)
    assert 10_000 in _ids(table_dir(sites.primary, EVENTS))
    _assert_equal(sites.primary, sites.standby)

    # Switching back restores the original roles (epoch 2), and replication goes on.
    again = drsync("switchover", "-c", str(sw_config))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "role epoch 2" in again.stdout
    assert (sites.primary_meta / "primary-state.json").exists()
    assert (sites.standby_meta / "standby-state.json").exists()
    write_deltalake(str(table_dir(sites.primary, EVENTS)),
                    pa.table({"id": pa.array([20_000], pa.int64()), "note": ["again"]}), mode="append")
    _round(sites.config)
    assert 20_000 in _ids(table_dir(sites.standby, EVENTS))
    _assert_equal(sites.primary, sites.standby)
    log = (sites.primary_meta / "audit.log").read_text().splitlines()
    assert sum('"command": "switchover"' in line for line in log) == 2


def test_dry_run_changes_nothing_and_a_stopped_restore_refuses(sites: Sites) -> None:
    create_sample_warehouse(sites.primary, rows=5)
    _round(sites.config)
    before = sorted(p.name for p in sites.primary_meta.iterdir())
    plan = drsync("switchover", "-c", str(sites.config), "--dry-run", check=True)
    assert "fence 10 table(s)" in plan.stdout and "role epoch" not in plan.stdout
    assert sorted(p.name for p in sites.primary_meta.iterdir()) == before
    drsync("stop-restore", "-c", str(sites.config), check=True)
    r = drsync("switchover", "-c", str(sites.config))
    assert r.returncode == 1 and "restore is stopped" in r.stderr
    assert not (sites.primary_meta / "role-change.json").exists()


@pytest.mark.parametrize("point", ["backup.committed", "switchover.promoted", "switchover.demoted"])
def test_switchover_killed_midway_is_rolled_back_or_completed_by_a_rerun(sites: Sites, point: str) -> None:
    create_sample_warehouse(sites.primary, rows=5)
    _round(sites.config)
    killed = drsync("switchover", "-c", str(sites.config), env={"DRSYNC_CRASH_AT": f"{point}:1"})
    assert killed.returncode == -9, killed.stderr
    # Until the re-run, the old primary's rounds are refused (the journal is there).
    r = drsync("backup", "-c", str(sites.config))
    assert r.returncode == 1 and "role change is unfinished" in r.stderr
    rerun = drsync("switchover", "-c", str(sites.config))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    expected = "rolled back" if point == "backup.committed" else "completing it"
    assert expected in rerun.stdout
    sw_config = sites.config.with_name("sw_backupRestore.ini")
    write_deltalake(str(table_dir(sites.standby, "hr.people.employees")),
                    pa.table({"id": pa.array([777], pa.int64()), "amount": [1.0], "note": ["x"]}),
                    mode="append")
    _round(sw_config)
    _assert_equal(sites.primary, sites.standby)


def test_switchover_over_ssh_and_reverse_replication(sshd: object, tmp_path: Path) -> None:
    """Over a real sshd: the standby's agent restores the final set and takes the primary role;
    the new primary then ships back over SSH with the swapped config."""
    from tests.integration.test_ssh import ssh_sites
    from tests.sshd import SshServer

    assert isinstance(sshd, SshServer)
    base = tmp_path / "s"
    sites = ssh_sites(base, sshd, more=f"remote-config-file={base / 'backupRestore.ini'}")
    create_sample_warehouse(sites.primary, rows=10)
    drsync("backup", "-c", str(sites.config), check=True)  # restored on request by the agent
    r = drsync("switchover", "-c", str(sites.config))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (sites.standby_meta / "primary-state.json").exists()
    assert (sites.primary_meta / "standby-state.json").exists()
    _assert_equal(sites.primary, sites.standby)
    sw_config = sites.config.with_name("sw_backupRestore.ini")
    write_deltalake(str(table_dir(sites.standby, "hr.people.employees")),
                    pa.table({"id": pa.array([4242], pa.int64()), "amount": [1.0], "note": ["ssh"]}),
                    mode="append")
    back = drsync("backup", "-c", str(sw_config), check=True)  # the agent restores it there
    assert "1 of 10 tables changed" in back.stdout, back.stdout
    assert 4242 in _ids(table_dir(sites.primary, "hr.people.employees"))
    _assert_equal(sites.primary, sites.standby)
    refused = drsync("backup", "-c", str(sites.config))
    assert refused.returncode == 1 and "belongs to the standby" in refused.stderr


def test_a_failed_switchover_rolls_back_and_says_what_happened(sites: Sites) -> None:
    from drsync.roles.fence import dir_modes
    from drsync.site.locks import operation_lock

    create_sample_warehouse(sites.primary, rows=5)
    _round(sites.config)
    modes = {t.name: dir_modes(t.path(sites.primary)) for t in discover_tables(sites.primary)}
    # The standby never gets to restore the final set (its restore is busy all along).
    with operation_lock(sites.standby_meta / "locks", "restore"):
        r = drsync("switchover", "-c", str(sites.config), "--timeout", "2")
    assert r.returncode == 1
    assert "switchover failed at step final-round: the standby did not restore set" in r.stderr, r.stderr
    assert "rolled back: roles unchanged, the primary's tables are unfenced" in r.stderr
    assert {t.name: dir_modes(t.path(sites.primary)) for t in discover_tables(sites.primary)} == modes
    assert not (sites.primary_meta / "role-change.json").exists()
    assert not (sites.primary_meta / "role.json").exists() and not (sites.standby_meta / "role.json").exists()
    write_deltalake(str(table_dir(sites.primary, "hr.people.employees")),
                    pa.table({"id": pa.array([31], pa.int64()), "amount": [1.0], "note": ["after"]}),
                    mode="append")
    _round(sites.config)  # replication goes on in the old direction
    _assert_equal(sites.primary, sites.standby)
    assert "rolled back at final-round" in (sites.primary_meta / "audit.log").read_text()
