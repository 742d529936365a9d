"""`make demo`: a primary and a standby warehouse on this host, several rounds replicated.

Writes a sample warehouse with the `deltalake` writer (three databases, ten tables, one
partitioned by values with spaces, '=', '%' and non-ASCII), then for each round makes some
writes (append, overwrite, update, delete, merge, schema change, optimize + vacuum), runs
`drsync backup` and `drsync restore` exactly as an operator would, shows progress, and ends
with `drsync verify --deep`. The workload functions are reused by the integration tests.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from drsync.fsutil import rmtree_force
from drsync.publications.store import publish_everything
from drsync.site.names import relpath_of

AWKWARD_REGIONS = ["north east", "a=b", "100%", "Zürich", "東京", "plain"]

TABLES = [
    "sales.public.orders",  # partitioned by awkward region values
    "sales.public.customers",
    "sales.finance.ledger",
    "sales.finance.fx_rates",
    "hr.people.employees",
    "hr.people.departments",
    "iot.raw.readings",  # checkpoints every few commits
    "iot.raw.devices",
    "iot.agg.hourly",
    "web.logs.events",
]


def table_dir(warehouse: Path, name: str) -> Path:
    return warehouse / relpath_of(name)


def _rows(start: int, n: int) -> pa.Table:
    ids = list(range(start, start + n))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "amount": pa.array([i * 1.5 for i in ids], pa.float64()),
        "note": pa.array([f"row {i} ✓" for i in ids], pa.string()),
    })


def _orders(start: int, n: int) -> pa.Table:
    t = _rows(start, n)
    regions = [AWKWARD_REGIONS[i % len(AWKWARD_REGIONS)] for i in range(start, start + n)]
    return t.append_column("region", pa.array(regions, pa.string()))


def create_sample_warehouse(warehouse: Path, rows: int = 200) -> None:
    for i, name in enumerate(TABLES):
        path = str(table_dir(warehouse, name))
        if name == "sales.public.orders":
            write_deltalake(path, _orders(0, rows), partition_by=["region"])
        elif name == "iot.raw.readings":
            write_deltalake(path, _rows(0, rows), configuration={"delta.checkpointInterval": "3"})
        else:
            write_deltalake(path, _rows(i * 10_000, rows // 2 + i))


def _append(wh: Path, r: int) -> str:
    write_deltalake(str(table_dir(wh, "sales.public.orders")), _orders(10_000 * r, 50), mode="append")
    write_deltalake(str(table_dir(wh, "iot.raw.readings")), _rows(10_000 * r, 30), mode="append")
    return "append to sales.public.orders (all awkward partitions) and iot.raw.readings"


def _overwrite(wh: Path, r: int) -> str:
    write_deltalake(str(table_dir(wh, "sales.finance.fx_rates")), _rows(500 * r, 40), mode="overwrite")
    return "overwrite sales.finance.fx_rates"


def _update_delete(wh: Path, r: int) -> str:
    DeltaTable(str(table_dir(wh, "hr.people.employees"))).update(
        predicate="id % 3 = 0", updates={"note": "'updated'"})
    DeltaTable(str(table_dir(wh, "sales.public.orders"))).delete("id % 7 = 0")
    return "update hr.people.employees, delete from sales.public.orders"


def _merge(wh: Path, r: int) -> str:
    dt = DeltaTable(str(table_dir(wh, "sales.public.customers")))
    src = _rows(10_000 + 90, 20)  # overlaps the tail of the table and adds new ids
    (dt.merge(src, predicate="t.id = s.id", source_alias="s", target_alias="t")
       .when_matched_update_all().when_not_matched_insert_all().execute())
    return "merge into sales.public.customers"


def _schema_change(wh: Path, r: int) -> str:
    t = _rows(20_000 * r, 10).append_column("currency", pa.array(["EUR"] * 10, pa.string()))
    write_deltalake(str(table_dir(wh, "sales.finance.ledger")), t, mode="append", schema_mode="merge")
    return "add column currency to sales.finance.ledger"


def _optimize_vacuum(wh: Path, r: int) -> str:
    for name in ("iot.raw.readings", "sales.public.orders"):
        dt = DeltaTable(str(table_dir(wh, name)))
        dt.optimize.compact()
        dt.create_checkpoint()
        dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    return "optimize + checkpoint + vacuum iot.raw.readings and sales.public.orders"


ROUND_WRITES: list[Callable[[Path, int], str]] = [
    _append, _overwrite, _update_delete, _merge, _schema_change, _optimize_vacuum,
]


def write_config(base: Path, transport: str = "local", grace: str = "0.2s", extra: str = "",
                 publish_all: bool = True) -> Path:
    """A backupRestore.ini for a primary and a standby under `base` on this host; with
    `publish_all`, also the publication `all` (every table of every database) on the primary."""
    cfg = base / "backupRestore.ini"
    cfg.write_text(f"""# drsync demo: both sites on this host
transport={transport}
primary-warehouse={base / 'primary' / 'warehouse'}
standby-warehouse={base / 'standby' / 'warehouse'}
primary-media-destination={base / 'primary' / 'media'}
primary-metadata-destination={base / 'primary' / 'metadata'}
restore-media-destination={base / 'standby' / 'media'}
restore-metadata-destination={base / 'standby' / 'metadata'}
primary-cluster-id={uuid.uuid5(uuid.NAMESPACE_URL, str(base) + '/primary')}
standby-cluster-id={uuid.uuid5(uuid.NAMESPACE_URL, str(base) + '/standby')}
parrallel-process=2
compression-level=1
barrier-grace={grace}
{extra}""")
    if publish_all:

        publish_everything(base / "primary" / "metadata")
    return cfg


def _drsync(*args: str) -> None:
    cmd = [sys.executable, "-m", "drsync", *args]
    print(f"\n$ drsync {' '.join(args)}", flush=True)
    rc = subprocess.run(cmd).returncode
    if rc not in (0,):
        raise SystemExit(f"demo: `drsync {' '.join(args)}` exited {rc}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", default="demo", help="where to create the demo sites (wiped first)")
    ap.add_argument("--rounds", type=int, default=len(ROUND_WRITES))
    args = ap.parse_args()
    base = Path(args.dir).resolve()
    if base.exists():

        rmtree_force(base)
    wh = base / "primary" / "warehouse"
    wh.mkdir(parents=True)
    (base / "standby" / "warehouse").mkdir(parents=True)
    cfg = str(write_config(base, publish_all=False))
    print(f"demo: primary warehouse {wh} with {len(TABLES)} tables; config {cfg}")
    create_sample_warehouse(wh)
    _drsync("config", "check", "-c", cfg)
    _drsync("prepare", "-c", cfg)  # directories and the cluster pair, as an operator starts
    _drsync("publication", "create", "all", "--all-databases", "-c", cfg)
    _drsync("backup", "--now", "-c", cfg)
    _drsync("restore", "-c", cfg)
    for r in range(1, args.rounds + 1):
        what = ROUND_WRITES[(r - 1) % len(ROUND_WRITES)](wh, r)
        print(f"\n=== round {r}: {what}")
        _drsync("backup", "--now", "-c", cfg)
        _drsync("restore", "-c", cfg)
    _drsync("show-progress", "-c", cfg, "--format", "table")
    _drsync("verify", "-c", cfg, "--deep")
    _drsync("check", "-c", cfg)
    print(f"\ndemo done: every table verified equal at the last barrier. Look around in {base}/")
    shutil.disk_usage(base)


if __name__ == "__main__":
    main()
