"""Iceberg directory tables through role changes (issue 19): switchover, reverse replication
(written by pyiceberg on the new primary, at the standby's own location), switching back."""

from __future__ import annotations

from tests.helpers import Sites, drsync
from tests.iceberg_helpers import (
    IceTable,
    backup_restore,
    batch,
    catalog,
    commit,
    current_metadata,
    duck_rows,
    iceduck,
)

_round = backup_restore


def test_switchover_reverse_replication_and_back(sites: Sites, ice: IceTable) -> None:
    t, src, dst = ice.table, ice.src, ice.dst
    commit(t, lambda t: t.append(batch(10, 2)))
    _round(sites.config)
    sw = drsync("switchover", "-c", str(sites.config))
    assert sw.returncode == 0, sw.stdout + sw.stderr
    sw_config = sites.config.with_name("sw_backupRestore.ini")

    # The new primary's copy is a table of its own: pyiceberg writes it at its location.
    cat2 = catalog(sites.base / "scratch-catalog-2")
    cat2.create_namespace("db")
    t2 = cat2.register_table("db.ice", str(current_metadata(dst)))
    commit(t2, lambda t: t.append(batch(1000, 2)))
    _round(sw_config)
    con = iceduck()
    assert duck_rows(con, src) == duck_rows(con, dst)
    assert (1000, "row1000") in duck_rows(con, src)
    assert str(sites.standby) not in current_metadata(src).read_text()

    again = drsync("switchover", "-c", str(sw_config))
    assert again.returncode == 0, again.stdout + again.stderr
    t3 = catalog(sites.base / "scratch-catalog-3")
    t3.create_namespace("db")
    t4 = t3.register_table("db.ice", str(current_metadata(src)))
    commit(t4, lambda t: t.append(batch(2000, 1)))
    _round(sites.config)
    assert duck_rows(con, src) == duck_rows(con, dst)
    assert (2000, "row2000") in duck_rows(con, dst)
