"""Failover with a half-applied set: the standby lands exactly on the previous barrier."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from drsync.demo import create_sample_warehouse, table_dir
from drsync.site.locks import operation_lock
from drsync.site.warehouse import discover_tables
from tests.helpers import Sites, drsync, duck, latest_version, rows


def _append(table: os.PathLike[str], i: int) -> None:
    write_deltalake(str(table), pa.table({"id": pa.array([i], pa.int64()), "amount": [1.0], "note": ["n"]}),
                    mode="append")


CHANGED = ["hr.people.employees", "iot.raw.devices", "web.logs.events"]


def test_failover_after_a_killed_restore_lands_on_the_previous_barrier(sites: Sites) -> None:
    create_sample_warehouse(sites.primary, rows=20)
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    barrier = {t.name: latest_version(t.path(sites.primary)) for t in discover_tables(sites.primary)}
    for i, name in enumerate(CHANGED):
        _append(table_dir(sites.primary, name), 900 + i)
        _append(table_dir(sites.primary, name), 950 + i)
    drsync("backup", "-c", str(sites.config), check=True)
    # Kill the restore after its first table of the new set: a half-applied set. Tables install
    # side by side (standby/apply.py), so others may be part way or done by then too.
    killed = drsync("restore", "-c", str(sites.config), env={"DRSYNC_CRASH_AT": "apply.table:1"})
    assert killed.returncode == -9
    ahead = {n: v for n in CHANGED if (v := latest_version(table_dir(sites.standby, n))) > barrier[n]}
    assert ahead, "the kill should leave a table at the new set's version"

    # The primary still replicating (its backup lock held): refused without --force.
    with operation_lock(sites.primary_meta / "locks", "backup"):
        r = drsync("failover", "-c", str(sites.config), "--yes")
    assert r.returncode == 1 and "reachable and replicating" in r.stderr, r.stderr
    # Destructive: without a terminal it needs --yes.
    r = drsync("failover", "-c", str(sites.config))
    assert r.returncode == 2 and "--yes" in r.stderr

    r = drsync("failover", "-c", str(sites.config), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "failover recovery point time:" in r.stdout
    for name in ahead:
        assert f"{name}: back to version {barrier[name]}" in r.stdout, r.stdout

    con = duck()
    for t in discover_tables(sites.primary):
        v = barrier[t.name]
        standby = t.path(sites.standby)
        assert latest_version(standby) == v, t.name
        # Content equal to the primary at that barrier, by an independent reader.
        assert rows(con, standby) == rows(con, t.path(sites.primary), version=v), t.name
        assert stat.S_IMODE(os.stat(standby).st_mode) & stat.S_IWUSR, f"{t.name} not writable"
        assert stat.S_IMODE(os.stat(standby / "_delta_log").st_mode) & stat.S_IWUSR
    # What was set aside is kept, not deleted: the commits above the barrier.
    q = sites.standby / "_drsync" / "failover-quarantine"
    for name, v in ahead.items():
        aside = sorted(p.name for p in q.glob(f"*/{name.replace('.', '/')}/_delta_log/*.json"))
        assert aside == [f"{c:020d}.json" for c in range(barrier[name] + 1, v + 1)], name
    # The promoted standby is writable for real.
    _append(table_dir(sites.standby, "hr.people.employees"), 5)

    # show-progress (from the new primary's config) shows the recovery point and the epoch.
    sw = sites.config.with_name("sw_backupRestore.ini")
    doc = json.loads(drsync("show-progress", "-c", str(sw), "--format", "json").stdout)
    assert doc["failover recovery point time"] != ""
    assert doc["role epoch"] == 1
    assert doc["last role change"].startswith("failover")
    table = drsync("show-progress", "-c", str(sw), "--format", "table").stdout
    assert "role epoch: 1" in table and "failover recovery point:" in table

    # No split brain: the old primary cannot ship any more.
    r = drsync("backup", "-c", str(sites.config))
    assert r.returncode == 1 and "no longer the primary" in r.stderr, r.stderr
    # Running it twice is harmless.
    r = drsync("failover", "-c", str(sites.config), "--yes")
    assert r.returncode == 0 and "nothing to do" in r.stdout


def test_failover_over_ssh_refuses_while_the_primary_answers(sshd: object, tmp_path: Path) -> None:
    from tests.integration.test_ssh import ssh_sites
    from tests.sshd import SshServer

    assert isinstance(sshd, SshServer)
    sites = ssh_sites(tmp_path / "s", sshd)
    create_sample_warehouse(sites.primary, rows=10)
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    r = drsync("failover", "-c", str(sites.config), "--yes")
    assert r.returncode == 1 and "is reachable (its agent answered over SSH)" in r.stderr, r.stderr
    assert not (sites.standby_meta / "role.json").exists()
    # The primary is lost: its SSH port no longer answers (this host's copy of the config).
    lost = tmp_path / "standby-host" / "backupRestore.ini"
    lost.parent.mkdir()
    text = sites.config.read_text().replace(f"ssh-port={sshd.port}", f"ssh-port={_closed_port()}")
    lost.write_text(text.replace("check-balance-retry-times=3", "check-balance-retry-times=0"))
    r = drsync("failover", "-c", str(lost), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "failover done at role epoch 1" in r.stdout
    con = duck()
    for t in discover_tables(sites.primary):
        assert rows(con, t.path(sites.standby)) == rows(con, t.path(sites.primary)), t.name
    assert (lost.parent / "sw_backupRestore.ini").exists()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("point", ["apply.file:1", "apply.table:1"])
def test_a_table_only_an_unfinished_set_carries_is_set_aside_whole(sites: Sites, point: str) -> None:
    create_sample_warehouse(sites.primary, rows=10)
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    barrier = {t.name: latest_version(t.path(sites.primary)) for t in discover_tables(sites.primary)}
    # The unfinished set carries the new table alone: a set's tables are installed side by side
    # (standby/apply.py), so with another table in it the first file installed, where the
    # restore is killed, could be that table's.
    _append(table_dir(sites.primary, "aaa.new.first"), 1)
    drsync("backup", "-c", str(sites.config), check=True)
    killed = drsync("restore", "-c", str(sites.config), env={"DRSYNC_CRASH_AT": point})
    assert killed.returncode == -9
    assert table_dir(sites.standby, "aaa.new.first").exists()
    r = drsync("failover", "-c", str(sites.config), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not table_dir(sites.standby, "aaa.new.first").exists()
    q = sites.standby / "_drsync" / "failover-quarantine"
    assert list(q.glob("*/aaa/new/first/*.parquet"))  # kept, not deleted
    con = duck()
    for t in discover_tables(sites.standby):
        assert latest_version(t.path(sites.standby)) == barrier[t.name]
        assert rows(con, t.path(sites.standby)) == rows(con, t.path(sites.primary), version=barrier[t.name])
