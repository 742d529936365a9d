"""Drills: writable forks of the standby at a barrier, made while replication goes on.

Real parts only: tables written by deltalake, rounds run by the CLI, rows read by DuckDB.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import threading
import uuid
from pathlib import Path
from typing import Any

from deltalake import DeltaTable, write_deltalake

from drsync.demo import ROUND_WRITES, TABLES, create_sample_warehouse, table_dir
from drsync.roles.drill import MARKER
from drsync.site.layout import DRILLS_DIR
from tests.helpers import Sites, drsync, duck, rows

_append, _overwrite, _update_delete, _merge, _schema_change, _optimize_vacuum = ROUND_WRITES
FileFacts = dict[str, tuple[int, int, int, str]]  # rel -> (inode, nlink, mode, blake2b)


def _round(sites: Sites) -> None:
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)


def facts(root: Path) -> FileFacts:
    """Every file under root with inode, link count, mode and content hash."""
    out: FileFacts = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = Path(dirpath, n)
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_ino, st.st_nlink, stat.S_IMODE(st.st_mode),
                                             hashlib.blake2b(p.read_bytes()).hexdigest())
    return out


def _record(sites: Sites, name: str) -> dict[str, Any]:
    rec: dict[str, Any] = json.loads((sites.standby_meta / DRILLS_DIR / f"{name}.json").read_text())
    return rec


def test_fork_while_replicating_then_write_read_and_drop(sites: Sites, tmp_path: Path) -> None:
    cfg = str(sites.config)
    create_sample_warehouse(sites.primary, rows=40)
    _round(sites)
    _append(sites.primary, 1)
    _round(sites)
    con = duck()

    # the primary keeps writing and rounds keep running while the drill is made
    failures: list[BaseException] = []
    started = threading.Event()

    def replicate() -> None:
        try:
            for r, write in enumerate((_overwrite, _update_delete, _merge, _schema_change, _append)):
                write(sites.primary, r + 2)
                started.set()
                _round(sites)
        except BaseException as e:  # reported by the main thread
            failures.append(e)
            started.set()

    worker = threading.Thread(target=replicate)
    worker.start()
    started.wait()
    fork = tmp_path / "drills" / "d1"
    fork.parent.mkdir()
    p = drsync("drill", "start", "d1", "--into", str(fork), "-c", cfg)
    worker.join()
    assert not failures, failures
    assert p.returncode == 0, p.stdout + p.stderr
    assert "10 table(s) at barrier" in p.stdout and "0 copied" in p.stdout
    rec = _record(sites, "d1")
    assert rec["state"] == "ready" and sorted(rec["tables"]) == sorted(TABLES)
    assert rec["log_bytes"] > 0 and rec["linked_bytes"] > 0 and rec["copied_bytes"] == 0
    assert not [e for e in fork.parent.iterdir() if e.name.startswith(".drsync-drill")]  # no temp left

    # the fork is each table at the barrier's version, equal to the primary's rows there
    for name, version in rec["tables"].items():
        assert rows(con, table_dir(fork, name)) == rows(con, table_dir(sites.primary, name), version), name
    # replication went on: the standby equals the primary now, and moved past the fork
    _round(sites)
    for name in TABLES:
        assert rows(con, table_dir(sites.standby, name)) == rows(con, table_dir(sites.primary, name)), name
    assert drsync("verify", "-c", cfg).returncode == 0

    # writable: own directories, own log files (not links), data shared read-only
    standby_before = facts(sites.standby)
    fork_facts = facts(fork)
    shared = {ino for ino, *_ in standby_before.values()} & {ino for ino, *_ in fork_facts.values()}
    assert shared, "data files are hard-linked"
    for rel, (ino, nlink, mode, _) in fork_facts.items():
        if "_delta_log" in rel or rel == MARKER:
            assert ino not in shared and nlink == 1 and mode == 0o644, rel
        else:
            assert ino in shared and mode == 0o444, rel  # never chmodded: it is the replicated inode
    for dirpath, _, _ in os.walk(fork):
        assert os.stat(dirpath).st_mode & stat.S_IWUSR, dirpath

    # write to the fork with deltalake, read it with DuckDB
    fx, emp, cust = (str(table_dir(fork, n)) for n in
                     ("sales.finance.fx_rates", "hr.people.employees", "sales.public.customers"))
    n_fx = len(rows(con, Path(fx)))
    extra = DeltaTable(fx).to_pyarrow_table().slice(0, 5)
    write_deltalake(fx, extra, mode="append")
    DeltaTable(emp).delete("id % 2 = 0")
    DeltaTable(cust).update(predicate="id % 5 = 0", updates={"note": "'drill'"})
    assert len(rows(con, Path(fx))) == n_fx + 5
    assert rows(con, Path(emp)) and all(r[0] % 2 == 1 for r in rows(con, Path(emp)))
    assert {r[2] for r in rows(con, Path(cust)) if r[0] % 5 == 0} == {"drill"}
    listed = drsync("drill", "list", "--format", "json", "-c", cfg, check=True)
    info = json.loads(listed.stdout)[0]
    assert info["name"] == "d1" and info["tables"] == 10 and info["written_since"] > 0
    assert info["keeps"].startswith(f"barrier map {rec['key']}")

    # the replicated tables were not touched by any of it
    assert facts(sites.standby) == standby_before
    for name in TABLES:
        assert rows(con, table_dir(sites.standby, name)) == rows(con, table_dir(sites.primary, name)), name

    # drop: only the fork goes; each replicated file loses exactly the fork's link
    linked = {ino for ino, *_ in facts(fork).values()}
    assert drsync("drill", "drop", "d1", "-c", cfg).returncode == 2  # needs --yes off a terminal
    p = drsync("drill", "drop", "d1", "--yes", "-c", cfg)
    assert p.returncode == 0, p.stderr
    assert not fork.exists() and not (sites.standby_meta / DRILLS_DIR / "d1.json").exists()
    after = facts(sites.standby)
    assert after.keys() == standby_before.keys()
    for rel, (ino, nlink, mode, digest) in standby_before.items():
        assert after[rel] == (ino, nlink - (ino in linked), mode, digest), rel
    assert drsync("verify", "-c", cfg).returncode == 0
    assert "no drills" in drsync("drill", "list", "-c", cfg, check=True).stdout


def test_other_filesystem_is_refused_unless_copy(sites: Sites) -> None:
    shm = Path("/dev/shm")
    assert shm.is_dir() and shm.stat().st_dev != sites.standby.stat().st_dev, "needs a tmpfs /dev/shm"
    create_sample_warehouse(sites.primary, rows=10)
    _round(sites)
    cfg = str(sites.config)
    base = shm / f"drsync-drill-test-{uuid.uuid4().hex[:8]}"
    base.mkdir()
    try:
        before = facts(sites.standby)
        p = drsync("drill", "start", "far", "--into", str(base / "far"), "-c", cfg)
        assert p.returncode == 1 and "on another filesystem" in p.stderr and "--copy" in p.stderr
        p = drsync("drill", "start", "far", "--into", str(base / "far"), "--copy", "-c", cfg)
        assert p.returncode == 0, p.stderr
        assert "of data copied" in p.stdout and _record(sites, "far")["copied_bytes"] > 0
        con = duck()
        for name in TABLES:
            assert rows(con, table_dir(base / "far", name)) == rows(con, table_dir(sites.standby, name))
        assert facts(sites.standby) == before  # copies: no link count changed
        drsync("drill", "drop", "far", "--yes", "-c", cfg, check=True)
        assert not (base / "far").exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)

