"""Drills of Iceberg tables (issue 19), in one set with a Delta table: the fork is a table at
its own location (Iceberg paths are absolute), read equal by DuckDB and pyiceberg, written by
pyiceberg without touching a file of the standby, and removed by `drill drop`; a barrier whose
Iceberg metadata the standby no longer holds is refused by name."""

from __future__ import annotations

import json
import os
from pathlib import Path

from deltalake import DeltaTable, write_deltalake

from tests.helpers import Sites, drsync, duck, rows
from tests.iceberg_helpers import (
    IceTable,
    backup_restore,
    batch,
    catalog,
    commit,
    current_metadata,
    duck_rows,
    iceduck,
    py_rows,
)
from tests.integration.test_drill import facts


def test_drill_forks_iceberg_and_delta_tables_of_one_barrier(sites: Sites, ice: IceTable,
                                                             tmp_path: Path) -> None:
    cfg = str(sites.config)
    delta_src = sites.primary / "db" / "s" / "dl"
    write_deltalake(str(delta_src), batch(0, 3))
    backup_restore(sites.config)
    first = sorted(p.stem for p in (sites.standby / "_drsync" / "barriers").glob("*.json"))[0]
    commit(ice.table, lambda t: t.append(batch(10, 2)))
    commit(ice.table, lambda t: t.delete("id = 1"))
    write_deltalake(str(delta_src), batch(10, 2), mode="append")
    backup_restore(sites.config)
    standby_before = facts(sites.standby)
    con = iceduck()

    fork = tmp_path / "drills" / "d1"
    fork.parent.mkdir()
    # The standby keeps only the newest metadata JSON: the first barrier cannot be forked.
    p = drsync("drill", "start", "old", "--into", str(tmp_path / "drills" / "old"), "--at", first, "-c", cfg)
    assert p.returncode != 0
    assert "db.s.ice" in p.stderr and "no metadata file for version" in p.stderr, p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    assert os.listdir(fork.parent) == []  # no fork, no temp directory
    p = drsync("drill", "start", "d1", "--into", str(fork), "-c", cfg)
    assert p.returncode == 0, p.stdout + p.stderr
    f_ice, f_dl = fork / "db" / "s" / "ice", fork / "db" / "s" / "dl"
    # The fork is a table of its own: every path in its metadata is under its final location
    # (not the temp directory it was built in, not the standby's).
    meta = current_metadata(f_ice)
    assert json.loads(meta.read_bytes())["location"] == str(f_ice)
    assert str(sites.standby) not in meta.read_text() and ".drsync-drill" not in meta.read_text()
    assert duck_rows(con, f_ice) == duck_rows(con, ice.dst) == duck_rows(con, ice.src)
    assert py_rows(f_ice) == duck_rows(con, f_ice)
    assert rows(duck(), f_dl) == rows(duck(), sites.standby / "db" / "s" / "dl")
    # The standby away: the fork still reads (it reads nothing of the standby's).
    away = sites.standby.with_name("standby-away")
    os.rename(sites.standby, away)
    try:
        assert duck_rows(con, f_ice) == duck_rows(con, ice.src)
    finally:
        os.rename(away, sites.standby)

    # Writable by pyiceberg: the new files land in the fork, the standby's stay as they were.
    cat = catalog(tmp_path / "fork-catalog")
    cat.create_namespace("db")
    t = cat.register_table("db.ice", str(meta))
    commit(t, lambda t: t.append(batch(500, 2)))
    assert (500, "row500") in duck_rows(con, f_ice)
    assert (500, "row500") not in duck_rows(con, ice.dst)
    DeltaTable(str(f_dl)).delete("id = 0")
    # (inode, mode, content) of every standby file as before; link counts grow by the fork's
    def same(f: dict[str, tuple[int, int, int, str]]) -> dict[str, tuple[int, int, str]]:
        return {k: (v[0], v[2], v[3]) for k, v in f.items() if not k.startswith("_drsync/")}
    assert same(facts(sites.standby)) == same(standby_before), "a standby file changed"

    # Replication goes on beside the drill.
    commit(ice.table, lambda t: t.append(batch(600, 1)))
    backup_restore(sites.config)
    assert duck_rows(con, ice.dst) == duck_rows(con, ice.src)
    assert (600, "row600") not in duck_rows(con, f_ice)
    v = drsync("verify", "-c", cfg, "--deep")
    assert v.returncode == 0, v.stdout + v.stderr

    p = drsync("drill", "drop", "d1", "--yes", "-c", cfg)
    assert p.returncode == 0, p.stdout + p.stderr
    assert not fork.exists() and os.listdir(fork.parent) == []
    assert duck_rows(con, ice.dst) == duck_rows(con, ice.src)

