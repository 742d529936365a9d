"""Storage follows the primary: what VACUUM and log cleanup remove there goes on the standby
too (after the set is applied), and a log cleaned past the last shipped version resyncs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from tests.helpers import Sites, drsync, duck, rows


def _files(table: Path) -> set[str]:
    return {str(Path(dp, f).relative_to(table)) for dp, _, fs in os.walk(table) for f in fs}


def _round(sites: Sites) -> dict[str, object]:
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    newest = sorted((sites.standby_meta / "manifests").glob("*.manifest.json"))[-1]
    return json.loads(newest.read_text())


def test_vacuum_and_log_cleanup_follow_and_resync_from_checkpoint(sites: Sites) -> None:
    p = sites.primary / "db" / "s" / "events"
    s = sites.standby / "db" / "s" / "events"
    cfg = {"delta.logRetentionDuration": "interval 0 seconds", "delta.checkpointInterval": "1000"}
    write_deltalake(str(p), pa.table({"a": [0]}), configuration=cfg)
    for i in range(1, 4):
        write_deltalake(str(p), pa.table({"a": [i]}), mode="append")
    _round(sites)
    assert _files(s) == _files(p)

    # Compaction + vacuum: the small files go away on the primary, and so on the standby.
    dt = DeltaTable(str(p))
    dt.optimize.compact()
    dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    m = _round(sites)
    (t,) = m["tables"]  # type: ignore[misc]
    assert t["deletions"], "vacuumed files should be listed as deletions"
    assert _files(s) == _files(p)

    # More commits, then a checkpoint whose log cleanup removes every earlier commit,
    # including ones the standby never received: the standby must resync from the checkpoint.
    for i in range(10, 13):
        write_deltalake(str(p), pa.table({"a": [i]}), mode="append")
    DeltaTable(str(p)).create_checkpoint()
    write_deltalake(str(p), pa.table({"a": [99]}), mode="append")  # triggers cleanup in delta-rs
    DeltaTable(str(p)).cleanup_metadata()
    log = sorted(os.listdir(p / "_delta_log"))
    assert "00000000000000000000.json" not in log, log
    m = _round(sites)
    (t,) = m["tables"]  # type: ignore[misc]
    assert t["mode"] in ("incremental", "resync")
    con = duck()
    assert rows(con, s) == rows(con, p)
    assert _files(s) == _files(p), (sorted(_files(s) ^ _files(p)))
    v = drsync("verify", "-c", str(sites.config), "--deep")
    assert v.returncode == 0, v.stdout
