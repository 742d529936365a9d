"""Reprotect after the old primary took more writes: set aside (not lost), then incremental."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import write_deltalake

from drsync.demo import create_sample_warehouse, table_dir
from drsync.site.warehouse import discover_tables
from tests.helpers import Sites, drsync, duck, latest_version, rows

BIG = "big.facts.events"


def _batch(start: int, n: int) -> pa.Table:
    return pa.table({"id": pa.array(range(start, start + n), pa.int64()),
                     "payload": pa.array([f"payload {i} " * 8 for i in range(start, start + n)])})


def _size(path: os.PathLike[str]) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def test_reprotect_sets_aside_the_old_primarys_writes_and_resumes_incrementally(sites: Sites) -> None:
    create_sample_warehouse(sites.primary, rows=20)
    big = table_dir(sites.primary, BIG)
    for i in range(4):
        write_deltalake(str(big), _batch(i * 50_000, 50_000), mode="append")
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    shared = latest_version(big)
    drsync("failover", "-c", str(sites.config), "--yes", check=True)
    sw = sites.config.with_name("sw_backupRestore.ini")

    # Both sides write after the failover: the same version numbers, different commits.
    write_deltalake(str(big), _batch(9_000_000, 7), mode="append")  # the old primary, 2 commits
    write_deltalake(str(big), _batch(9_100_000, 5), mode="append")
    new_big = table_dir(sites.standby, BIG)
    write_deltalake(str(new_big), _batch(8_000_000, 3), mode="append")  # the new primary
    assert latest_version(big) == shared + 2 and latest_version(new_big) == shared + 1
    # The old primary cannot ship (older epoch); the new one ships nothing before reprotect.
    r = drsync("backup", "-c", str(sites.config))
    assert r.returncode == 1 and "no longer the primary" in r.stderr

    r = drsync("reprotect", "-c", str(sites.config), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{BIG}: back to version {shared}; set aside 2 commit(s)" in r.stdout
    assert "12 row(s) added by them" in r.stdout
    # Set aside, not lost: the rows are in the quarantine's data files.
    q = sites.primary / "_drsync" / "reprotect-quarantine"
    kept = [pq.read_table(p) for p in q.rglob("*.parquet")]
    ids = sorted(i for t in kept for i in t.column("id").to_pylist())
    assert ids == list(range(9_000_000, 9_000_007)) + list(range(9_100_000, 9_100_005))
    assert latest_version(big) == shared

    # Replication resumes from the new primary, incrementally: bytes shipped << table size.
    before = {p.name for p in sites.standby_media.iterdir()}
    out = drsync("backup", "-c", str(sw), check=True).stdout
    assert "1 of 11 tables changed" in out, out
    new_sets = [p for p in sites.standby_media.iterdir() if p.name not in before]
    assert len(new_sets) == 1
    shipped = _size(new_sets[0])
    assert shipped * 50 < _size(new_big), (shipped, _size(new_big))
    drsync("restore", "-c", str(sw), check=True)
    con = duck()
    for t in discover_tables(sites.standby):
        assert rows(con, t.path(sites.primary)) == rows(con, t.path(sites.standby)), t.name
    assert 8_000_000 in {row[0] for row in rows(con, big)}
    # The old primary is now a read-only standby; running reprotect again changes nothing.
    assert not os.stat(big).st_mode & 0o200
    r = drsync("reprotect", "-c", str(sites.config), "--yes")
    assert r.returncode == 0 and "nothing to do" in r.stdout


def test_reprotect_over_ssh(sshd: object, tmp_path: Path) -> None:
    """The old primary reaches the new primary's agent with an older epoch: only the reprotect
    operations are let in; afterwards the new primary ships to it over SSH."""
    from tests.integration.test_ssh import ssh_sites
    from tests.sshd import SshServer

    assert isinstance(sshd, SshServer)
    base = tmp_path / "s"
    sites = ssh_sites(base, sshd, more=f"remote-config-file={base / 'backupRestore.ini'}")
    create_sample_warehouse(sites.primary, rows=10)
    big = table_dir(sites.primary, BIG)
    write_deltalake(str(big), _batch(0, 20_000))
    drsync("backup", "-c", str(sites.config), check=True)  # restored on request by the agent
    shared = latest_version(big)
    drsync("failover", "-c", str(sites.config), "--yes", "--force", check=True)
    write_deltalake(str(big), _batch(9_000_000, 4), mode="append")  # the old primary writes on
    r = drsync("backup", "-c", str(sites.config))
    assert r.returncode == 1, r.stdout + r.stderr  # refused: an old epoch
    r = drsync("reprotect", "-c", str(sites.config), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{BIG}: back to version {shared}; set aside 1 commit(s)" in r.stdout and "4 row(s)" in r.stdout
    sw = sites.config.with_name("sw_backupRestore.ini")
    new_big = table_dir(sites.standby, BIG)
    write_deltalake(str(new_big), _batch(8_000_000, 3), mode="append")
    out = drsync("backup", "-c", str(sw), check=True).stdout  # the agent restores it there
    assert "1 of 11 tables changed" in out, out
    con = duck()
    for t in discover_tables(sites.standby):
        assert rows(con, t.path(sites.primary)) == rows(con, t.path(sites.standby)), t.name


def test_reprotect_rebuilds_the_inventory_when_the_old_primary_lacks_a_shared_commit(sites: Sites) -> None:
    create_sample_warehouse(sites.primary, rows=10)
    t = table_dir(sites.primary, "hr.people.employees")
    write_deltalake(str(t), _batch_like_employees(100), mode="append")
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    top = latest_version(t)
    drsync("failover", "-c", str(sites.config), "--yes", check=True)
    # The old primary lost its newest commit (say, a disk restored from an older snapshot).
    (t / "_delta_log" / f"{top:020d}.json").unlink()
    r = drsync("reprotect", "-c", str(sites.config), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"hr.people.employees: the new primary's inventory rebuilt at version {top - 1}" in r.stdout
    sw = sites.config.with_name("sw_backupRestore.ini")
    drsync("backup", "-c", str(sw), check=True)
    drsync("restore", "-c", str(sw), check=True)
    con = duck()
    assert latest_version(t) == top
    for ref in discover_tables(sites.standby):
        assert rows(con, ref.path(sites.primary)) == rows(con, ref.path(sites.standby)), ref.name


def _batch_like_employees(i: int) -> pa.Table:
    return pa.table({"id": pa.array([i], pa.int64()), "amount": [1.0], "note": ["x"]})
