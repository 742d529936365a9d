"""Read-only, honestly: file modes stop nobody when you are root, so this test writes as an
unprivileged user who owns the standby warehouse and runs drsync's restore there, as a real
deployment would (`username` in backupRestore.ini)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import textwrap

import pyarrow as pa
from deltalake import write_deltalake

from drsync.demo import create_sample_warehouse, table_dir
from tests.conftest import UNPRIVILEGED_USER
from tests.helpers import REPO, Sites, drsync, duck, rows
from tests.iceberg_helpers import (
    backup_restore,
    catalog,
    create_dir_table,
    current_metadata,
    duck_rows,
    ice_table,
    iceduck,
)

USER = UNPRIVILEGED_USER




# The interpreter may live where the test user cannot read (pyenv under /root), so the child
# starts as root, imports what it needs, then drops to the user for good before doing anything.
DROP = f"""
import os, pwd, sys
import pyarrow, pyarrow.parquet, deltalake, drsync.cli.main, drsync.standby.restore, drsync.config  # noqa
import encodings.utf_8_sig, encodings.idna, encodings.ascii, encodings.latin_1  # noqa
import drsync.sets.bundle, drsync.standby.verify, zstandard, tarfile, csv, uuid  # noqa
import drsync.logsetup, drsync.daemon.oneshot, drsync.config.envfile, drsync.cli.dws, logging.handlers  # noqa
import pyiceberg.catalog.sql, pyiceberg.io.pyarrow, pyiceberg.table, sqlalchemy.dialects.sqlite  # noqa
import pyarrow.dataset, fastavro, sqlite3  # noqa
pw = pwd.getpwnam({USER!r})
os.setgroups([]); os.setgid(pw.pw_gid); os.setuid(pw.pw_uid)
assert os.geteuid() == pw.pw_uid and os.getegid() == pw.pw_gid
"""


def _as_user(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/tmp", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", DROP + textwrap.dedent(code), *args],
                          capture_output=True, text=True, env=env, timeout=120)


WRITE = """
import sys, pyarrow as pa
from deltalake import write_deltalake
write_deltalake(sys.argv[1], pa.table({"id": pa.array([7], pa.int64()), "amount": [1.0], "note": ["u"]}),
                mode=sys.argv[2])
print("wrote")
"""

RESTORE = """
import sys
from drsync.cli.main import main
sys.argv = ["drsync", "restore", "-c", sys.argv[1]]
main()
"""


def test_replicated_tables_refuse_an_unprivileged_writer_others_do_not(open_sites: Sites) -> None:
    sites = open_sites
    uid = pwd.getpwnam(USER).pw_uid
    create_sample_warehouse(sites.primary, rows=20)
    # The standby side belongs to the unprivileged user; drsync's restore runs as that user.
    for p in (sites.base / "standby", sites.config):
        subprocess.run(["chown", "-R", f"{uid}:{uid}", str(p)], check=True)
    os.chmod(sites.base, 0o755)
    (sites.standby_media).mkdir(parents=True, exist_ok=True)
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(sites.base / "standby")], check=True)

    drsync("backup", "-c", str(sites.config), check=True)
    # The primary (root) shipped into the standby's inbox: hand the files to the standby user.
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(sites.base / "standby")], check=True)
    r = _as_user(RESTORE, str(sites.config))
    assert r.returncode == 0, r.stdout + r.stderr

    # 1. The same user can create and write a table of its own on the standby.
    local_table = sites.standby / "scratch" / "work" / "notes"
    w = _as_user(WRITE, str(local_table), "append")
    assert w.returncode == 0 and "wrote" in w.stdout, w.stderr
    w = _as_user(WRITE, str(local_table), "append")
    assert w.returncode == 0, w.stderr

    # 2. ... but cannot write a replicated one.
    replicated = table_dir(sites.standby, "hr.people.employees")
    before = sorted(os.listdir(replicated / "_delta_log"))
    w = _as_user(WRITE, str(replicated), "append")
    assert w.returncode != 0, "an unprivileged writer could append to a replicated table"
    assert "ermission denied" in w.stderr or "PermissionDenied" in w.stderr, w.stderr
    assert sorted(os.listdir(replicated / "_delta_log")) == before
    w = _as_user(WRITE, str(replicated), "overwrite")
    assert w.returncode != 0

    # 3. Replication goes on, and the local table is untouched by it.
    write_deltalake(str(table_dir(sites.primary, "hr.people.employees")),
                    pa.table({"id": pa.array([5000], pa.int64()), "amount": [2.0], "note": ["p"]}),
                    mode="append")
    drsync("backup", "-c", str(sites.config), check=True)
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(sites.standby_media), str(sites.standby_meta)],
                   check=True)
    r = _as_user(RESTORE, str(sites.config))
    assert r.returncode == 0, r.stdout + r.stderr
    con = duck()
    assert rows(con, replicated) == rows(con, table_dir(sites.primary, "hr.people.employees"))
    assert len(rows(con, local_table)) == 2


ICE_WRITE = """
import sys, pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
cat = SqlCatalog("w", uri=f"sqlite:///{sys.argv[2]}/w.db")
cat.create_namespace("db")
t = cat.register_table("db.t", sys.argv[1])
t.append(pa.table({"id": pa.array([7], pa.int64()), "name": ["u"]}))
print("wrote")
"""


def test_replicated_iceberg_tables_refuse_an_unprivileged_pyiceberg_writer(open_sites: Sites) -> None:
    """Modes, not ownership, stop the writer: the standby warehouse is handed to the user."""
    sites = open_sites
    uid = pwd.getpwnam(USER).pw_uid
    ice = ice_table(sites)
    backup_restore(sites.config)
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(sites.standby)], check=True)
    scratch = sites.base / "writer"
    scratch.mkdir()
    os.chown(scratch, uid, uid)
    # The control: the same user and writer script write an Iceberg table of the user's own.
    own = sites.standby / "scratch" / "work" / "ice"
    create_dir_table(catalog(sites.base / "own-catalog"), "db.own", own)
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(sites.standby / "scratch")], check=True)
    w = _as_user(ICE_WRITE, str(current_metadata(own)), str(scratch))
    assert w.returncode == 0 and "wrote" in w.stdout, w.stdout + w.stderr

    before = sorted(str(p.relative_to(ice.dst)) for p in ice.dst.rglob("*"))
    (scratch / "w.db").unlink()
    w = _as_user(ICE_WRITE, str(current_metadata(ice.dst)), str(scratch))
    assert w.returncode != 0, "an unprivileged writer could append to a replicated Iceberg table"
    assert "ermission denied" in w.stderr or "PermissionError" in w.stderr, w.stderr
    assert sorted(str(p.relative_to(ice.dst)) for p in ice.dst.rglob("*")) == before
    con = iceduck()
    assert duck_rows(con, ice.dst) == duck_rows(con, ice.src)
