"""Failover and reprotect with Iceberg tables (issue 19): a directory table and a table of a
pyiceberg SQL catalog in one set with a Delta table. A killed restore leaves the Iceberg tables
ahead of the barrier; failover takes them back (pointer first, then what lies above it into
the quarantine), the new primary's tables take pyiceberg writes (through a catalog and through
the standby's catalog), and reprotect ships them back to the old primary: readers equal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deltalake import write_deltalake
from pyiceberg.catalog.sql import SqlCatalog

from tests.helpers import Sites, drsync, duck, make_sites, rows
from tests.iceberg_helpers import (
    backup_restore,
    batch,
    catalog,
    commit,
    current_metadata,
    duck_rows,
    ice_table,
    iceduck,
    py_rows,
)

CAT = ("db", "cat_t")  # the standby catalog row has the primary catalog's identifier


def _sites(tmp_path: Path) -> tuple[Sites, str, str]:
    base = tmp_path / "sites"
    pcat, scat = f"sqlite:///{base}/primary/cat.db", f"sqlite:///{base}/standby/cat.db"
    sites = make_sites(base, extra=f"primary-iceberg-catalog={pcat}\nstandby-iceberg-catalog={scat}\n"
                                   "iceberg-catalog-name=prod\n")
    return sites, pcat, scat


def _cat_rows(url: str, ident: tuple[str, ...]) -> list[tuple[Any, ...]]:
    arrow = SqlCatalog("prod", uri=url).load_table(ident).scan().to_arrow()
    return sorted((tuple(r.values()) for r in arrow.to_pylist()), key=repr)


def test_failover_takes_iceberg_tables_back_then_reprotect_ships_them_back(tmp_path: Path) -> None:
    sites, pcat_url, scat_url = _sites(tmp_path)
    ice = ice_table(sites, "a_ice")  # sorts first: applied first
    pcat = SqlCatalog("prod", uri=pcat_url, warehouse=f"file://{tmp_path}/unused")
    pcat.create_namespace("db")
    cat_src, cat_dst = sites.primary / "db" / "s" / "cat_t", sites.standby / "db" / "s" / "cat_t"
    ct = pcat.create_table("db.cat_t", schema=batch(0, 1).schema, location=str(cat_src))
    ct.append(batch(0, 4))
    dl_src, dl_dst = sites.primary / "db" / "s" / "dl", sites.standby / "db" / "s" / "dl"
    write_deltalake(str(dl_src), batch(0, 3))
    backup_restore(sites.config)
    con = iceduck()
    at_barrier = {"ice": duck_rows(con, ice.src), "cat": _cat_rows(pcat_url, ("db", "cat_t")),
                  "dl": rows(duck(), dl_src)}
    hint_at_barrier = (ice.dst / "metadata" / "version-hint.text").read_text()

    commit(ice.table, lambda t: t.append(batch(100, 2)))
    commit(ice.table, lambda t: t.append(batch(200, 2)))
    ct.append(batch(300, 3))
    write_deltalake(str(dl_src), batch(400, 1), mode="append")
    drsync("backup", "-c", str(sites.config), check=True)
    # Killed after the last table's files: every table ahead of the barrier, the standby
    # catalog's row of cat_t switched too (the set is not committed: no barrier map).
    killed = drsync("restore", "-c", str(sites.config), env={"DRSYNC_CRASH_AT": "apply.table:3"})
    assert killed.returncode == -9
    assert (100, "row100") in duck_rows(con, ice.dst)
    assert len(_cat_rows(scat_url, CAT)) == 7

    r = drsync("failover", "-c", str(sites.config), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "db.s.a_ice: back to version" in r.stdout and "4 row(s) added by them" in r.stdout, r.stdout
    assert "db.s.cat_t: back to version" in r.stdout and "3 row(s) added by them" in r.stdout, r.stdout
    assert (ice.dst / "metadata" / "version-hint.text").read_text() == hint_at_barrier
    assert duck_rows(con, ice.dst) == py_rows(ice.dst) == at_barrier["ice"]
    assert _cat_rows(scat_url, CAT) == at_barrier["cat"]  # the standby catalog's row went back too
    assert duck_rows(con, cat_dst) == at_barrier["cat"]
    assert rows(duck(), dl_dst) == at_barrier["dl"]
    assert "db.s.dl: back to version" in r.stdout
    # Set aside, not lost: the metadata above the barrier and the data only it reaches.
    q = sites.standby / "_drsync" / "failover-quarantine"
    aside = {p.relative_to(q).as_posix().split("/", 1)[1] for p in q.rglob("*") if p.is_file()}
    assert any(a.startswith("db/s/a_ice/metadata/") and a.endswith(".metadata.json") for a in aside)
    assert any(a.startswith("db/s/a_ice/data/") for a in aside)
    assert any(a.startswith("db/s/cat_t/data/") for a in aside)
    assert not any(p.name.startswith(".") for p in (ice.dst / "metadata").iterdir())
    v = drsync("verify", "-c", str(sites.config.with_name("sw_backupRestore.ini")), "--deep")
    assert "Traceback" not in v.stdout + v.stderr

    # The new primary's Iceberg tables take pyiceberg writes: a directory table through a
    # scratch catalog (and its hint), a catalog table through the standby's own catalog.
    scratch = catalog(tmp_path / "new-primary-writer")
    scratch.create_namespace("db")
    commit(scratch.register_table("db.a_ice", str(current_metadata(ice.dst))),
           lambda t: t.append(batch(1000, 2)))
    SqlCatalog("prod", uri=scat_url).load_table(CAT).append(batch(2000, 1))
    write_deltalake(str(dl_dst), batch(3000, 1), mode="append")

    r = drsync("reprotect", "-c", str(sites.config), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    sw = sites.config.with_name("sw_backupRestore.ini")
    backup_restore(sw)
    assert duck_rows(con, ice.src) == duck_rows(con, ice.dst) == py_rows(ice.src)
    assert (1000, "row1000") in duck_rows(con, ice.src)
    assert duck_rows(con, cat_src) == _cat_rows(scat_url, CAT)
    assert (2000, "row2000") in duck_rows(con, cat_src)
    assert rows(duck(), dl_src) == rows(duck(), dl_dst)
    meta = json.loads(current_metadata(ice.src).read_bytes())
    assert meta["location"] == str(ice.src)  # rewritten to the old primary's own location
    assert str(sites.standby) not in current_metadata(cat_src).read_text()
    # The old primary's catalog (its standby catalog now) names the shipped-back table.
    row = SqlCatalog("prod", uri=pcat_url).load_table(CAT).metadata_location
    assert row.startswith(str(cat_src / "metadata"))
