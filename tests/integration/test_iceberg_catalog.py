"""Iceberg tables of a pyiceberg SQL catalog (issue 19): found through primary-iceberg-catalog
(no version-hint.text on the primary), registered in the standby's own catalog
(standby-iceberg-catalog) under the primary's identifier (`db.cat_t`, though drsync names the
table `db.s.cat_t` after its directory), the row switched only after the new metadata is in place.
Read on the standby through that catalog by pyiceberg and by DuckDB at every snapshot, with
the primary's directory renamed away."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pyiceberg.catalog.sql import SqlCatalog

from tests.helpers import Sites, drsync, make_sites
from tests.iceberg_helpers import batch, iceduck


def _rows(arrow: Any) -> list[tuple[Any, ...]]:
    return sorted((tuple(r.values()) for r in arrow.to_pylist()), key=repr)


def _read_all(cat: SqlCatalog, ident: tuple[str, ...]) -> dict[Any, Any]:
    t = cat.load_table(ident)
    con = iceduck()
    loc = str(t.metadata_location).replace("'", "''")
    out: dict[Any, Any] = {"current": _rows(t.scan().to_arrow())}
    assert sorted(con.execute(f"SELECT * FROM iceberg_scan('{loc}')").fetchall(), key=repr) == out["current"]
    for s in t.metadata.snapshots:
        out[s.snapshot_id] = _rows(t.scan(snapshot_id=s.snapshot_id).to_arrow())
        scan = f"iceberg_scan('{loc}', snapshot_from_id={s.snapshot_id})"
        duck = con.execute(f"SELECT * FROM {scan}").fetchall()
        assert sorted(duck, key=repr) == out[s.snapshot_id]
    return out


def _catalog_keys(base: Path) -> tuple[str, str, str]:
    """(primary catalog URL, standby catalog URL, the config lines naming them)."""
    pcat_url, scat_url = f"sqlite:///{base}/primary/cat.db", f"sqlite:///{base}/standby/cat.db"
    return pcat_url, scat_url, (f"primary-iceberg-catalog={pcat_url}\n"
                                f"standby-iceberg-catalog={scat_url}\niceberg-catalog-name=prod\n")


def _rounds(sites: Sites, pcat_url: str, scat_url: str, writes: int) -> None:
    """A catalog table written `writes` times, a round after each; the standby's catalog row
    read back by both readers at every snapshot, primary renamed away."""
    pcat = SqlCatalog("prod", uri=pcat_url, warehouse=f"file://{sites.base}/unused")
    pcat.create_namespace("db")
    src = sites.primary / "db" / "s" / "cat_t"
    t = pcat.create_table("db.cat_t", schema=batch(0, 1).schema, location=str(src))
    ops = [lambda t: t.append(batch(0, 3)), lambda t: t.append(batch(10, 2)),
           lambda t: t.overwrite(batch(20, 2)), lambda t: t.append(batch(30, 1))]
    for w in ops[:writes]:
        w(t)
        assert not (src / "metadata" / "version-hint.text").exists()
        drsync("backup", "-c", str(sites.config), check=True)
        drsync("restore", "-c", str(sites.config), check=True)
        expected = _read_all(pcat, ("db", "cat_t"))
        scat = SqlCatalog("prod", uri=scat_url)
        away = sites.primary.with_name("warehouse.away")
        os.rename(sites.primary, away)
        try:
            got = _read_all(scat, ("db", "cat_t"))
        finally:
            os.rename(away, sites.primary)
        assert got == expected
        row = scat.load_table(("db", "cat_t")).metadata_location
        assert row.startswith(str(sites.standby / "db" / "s" / "cat_t" / "metadata"))
        assert scat.list_tables("db") == [("db", "cat_t")]  # one row, the primary's identifier


def test_sql_catalog_table_over_rounds(tmp_path: Path) -> None:
    base = tmp_path / "sites"
    pcat_url, scat_url, keys = _catalog_keys(base)
    _rounds(make_sites(base, extra=keys), pcat_url, scat_url, 4)


def test_sql_catalog_table_over_real_sshd(sshd: Any, tmp_path: Path) -> None:
    from tests.integration.test_ssh import ssh_sites

    base = tmp_path / "s"
    pcat_url, scat_url, keys = _catalog_keys(base)
    _rounds(ssh_sites(base, sshd, more=keys), pcat_url, scat_url, 2)
