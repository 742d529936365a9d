"""A warehouse laid out the way Spark writes it (warehouse-layout=hive, issue 16 item 9):
`<root>/<db>.db/<table>/`, the default database's tables at the root, names with '.'.
Tables written by the real deltalake writer at those paths, replicated by the real CLI, and
read on the standby by DuckDB at the barrier (the barrier map's versions)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from drsync.site.names import relpath_of
from tests.helpers import Sites, drsync, duck, make_sites, rows

# name as drsync shows it -> directory below the warehouse root, as Spark lays it out
TABLES = {
    "default.visits": "visits",
    "default.`delta-0.8.0`": "delta-0.8.0",
    "sales.orders": "sales.db/orders",
    "sales.`orders.v2`": "sales.db/orders.v2",
    "`my.lake`.events": "my.lake.db/events",
}


def hive_sites(tmp_path: Path) -> Sites:
    return make_sites(tmp_path / "sites", extra="warehouse-layout=hive\n")


def write(sites: Sites, rel: str, n: int, mode: str = "append") -> None:
    write_deltalake(str(sites.primary / rel), pa.table({"id": list(range(n)), "v": [rel] * n}), mode=mode)


def test_a_spark_warehouse_replicates_and_reads_equal_at_the_barrier(tmp_path: Path) -> None:
    sites = hive_sites(tmp_path)
    for i, rel in enumerate(TABLES.values()):
        write(sites, rel, i + 2)
    (sites.primary / "scratch.db" / "not_a_table").mkdir(parents=True)  # no _delta_log: ignored
    cfg = str(sites.config)
    listed = json.loads(drsync("publication", "list", "-c", cfg, "--format", "json", check=True).stdout)
    assert sorted(listed["publications"][0]["tables"]) == sorted(TABLES)
    for rnd in range(2):
        if rnd:
            write(sites, "sales.db/orders.v2", 3)
            write(sites, "delta-0.8.0", 1, mode="overwrite")
        drsync("backup", "-c", cfg, check=True)
        drsync("restore", "-c", cfg, check=True)
        barriers = sorted((sites.standby / "_drsync" / "barriers").glob("*.json"))
        versions = json.loads(barriers[-1].read_text())
        assert sorted(versions) == sorted(TABLES)
        con = duck()
        for name, rel in TABLES.items():
            assert relpath_of(name) == rel
            standby_rows = rows(con, sites.standby / rel, versions[name])
            assert standby_rows == rows(con, sites.primary / rel, versions[name]), name
            assert standby_rows  # every table has rows
    progress = json.loads(drsync("show-progress", "-c", cfg, "--format", "json", check=True).stdout)
    assert progress["apply"]["restoreState"] == "waiting"
    v = drsync("verify", "-c", cfg, "--table", "sales.`orders.v2`", "--deep")
    assert v.returncode == 0 and "ok       sales.`orders.v2`" in v.stdout, v.stdout + v.stderr


def test_publications_and_object_lists_use_the_quoted_names(tmp_path: Path) -> None:
    sites = make_sites(tmp_path / "sites", extra="warehouse-layout=hive\n")
    for rel in TABLES.values():
        write(sites, rel, 2)
    cfg = str(sites.config)
    drsync("publication", "drop", "all", "-c", cfg, check=True)
    r = drsync("publication", "create", "_pub_for_fine_dr", "--db", "sales", "--table",
               "orders,`orders.v2`", "-c", cfg, check=True)
    assert "table `orders.v2`" in r.stdout
    r = drsync("publication", "create", "p2", "--db", "sales", "--schema", "s", "-c", cfg)
    assert r.returncode == 2 and "hive has no schemas" in r.stderr
    listed = json.loads(drsync("publication", "list", "-c", cfg, "--format", "json", check=True).stdout)
    assert listed["publications"][0]["tables"] == ["sales.orders", "sales.`orders.v2`"]
    objects = sites.base / "objects.list"
    objects.write_text("sales.`orders.v2`\n")
    drsync("cancel-publication", "-c", cfg, "--object-list", str(objects), check=True)
    listed = json.loads(drsync("publication", "list", "-c", cfg, "--format", "json", check=True).stdout)
    assert listed["publications"][0]["tables"] == ["sales.orders"]
