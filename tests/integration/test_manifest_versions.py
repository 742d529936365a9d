"""Manifest 1.3 carries only the tables in the set: the standby still publishes the whole
barrier map, an old 1.2 manifest (whole map) still restores, and a kill after the round's
index is written converges."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from drsync.sets.manifest import FORMAT_VERSION
from drsync.site.layout import MANIFEST_DIR, WarehouseLayout
from tests.helpers import Sites, drsync, duck, read_manifests, rows

NAMES = [f"db.s.t{i}" for i in range(4)]


def _path(warehouse: Path, name: str) -> Path:
    return warehouse.joinpath(*name.split("."))


def _round(sites: Sites) -> None:
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)


def _head(sites: Sites) -> dict[str, int]:
    return {n: DeltaTable(str(_path(sites.primary, n))).version() for n in NAMES}


def _standby_map(sites: Sites, key: str) -> dict[str, int]:
    return dict(json.loads(WarehouseLayout(sites.standby).barrier_map(key).read_text()))


def _setup(sites: Sites) -> None:
    for i, n in enumerate(NAMES):
        write_deltalake(str(_path(sites.primary, n)), pa.table({"a": [i]}))
    _round(sites)


def _raw(meta: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted((meta / MANIFEST_DIR).glob("*.manifest.json"))]


def _assert_converged(sites: Sites) -> None:
    con = duck()
    last = read_manifests(sites.standby_meta / MANIFEST_DIR)[-1]
    assert last["versions"] == _head(sites)
    assert _standby_map(sites, str(last["key"])) == _head(sites)
    for n in NAMES:
        assert rows(con, _path(sites.standby, n)) == rows(con, _path(sites.primary, n)), n


def test_a_set_of_one_changed_table_carries_only_it_and_restores(sites: Sites) -> None:
    _setup(sites)
    write_deltalake(str(_path(sites.primary, "db.s.t2")), pa.table({"a": [9]}), mode="append")
    _round(sites)
    first, second = _raw(sites.primary_meta)
    assert first["format_version"] == FORMAT_VERSION and first["versions_base"] is None
    assert first["versions"] == dict.fromkeys(NAMES, 0), "the first set carries the whole map"
    assert second["versions_base"] == first["key"] == second["prior_key"]
    assert second["versions"] == {"db.s.t2": 1} and second["versions_dropped"] == []
    assert [t["name"] for t in second["tables"]] == ["db.s.t2"]  # type: ignore[attr-defined]
    assert _standby_map(sites, str(second["key"])) == {**dict.fromkeys(NAMES, 0), "db.s.t2": 1}
    _assert_converged(sites)
    # A table dropped on the primary leaves the map as a `versions_dropped` entry.
    shutil.rmtree(_path(sites.primary, "db.s.t3"))
    b = drsync("backup", "--confirm-desync", "-c", str(sites.config))
    assert b.returncode == 0, b.stdout + b.stderr
    drsync("restore", "-c", str(sites.config), check=True)
    third = _raw(sites.primary_meta)[-1]
    assert third["versions"] == {} and third["versions_dropped"] == ["db.s.t3"], third
    assert "db.s.t3" not in _standby_map(sites, str(third["key"]))


def test_an_old_1_2_manifest_with_the_whole_map_still_restores(sites: Sites) -> None:
    _setup(sites)
    write_deltalake(str(_path(sites.primary, "db.s.t1")), pa.table({"a": [5]}), mode="append")
    drsync("backup", "-c", str(sites.config), check=True)
    inbox = sorted((sites.standby_meta / MANIFEST_DIR).glob("*.manifest.json"))[-1]
    m = json.loads(inbox.read_text())
    assert m["versions_base"] is not None
    # What a 1.2 primary wrote: the whole map, no base.
    m["format_version"] = "1.2"
    m["versions"] = {**dict.fromkeys(NAMES, 0), "db.s.t1": 1}
    del m["versions_base"], m["versions_dropped"]
    inbox.write_text(json.dumps(m))
    drsync("restore", "-c", str(sites.config), check=True)
    assert _standby_map(sites, m["key"]) == _head(sites)
    # The next 1.3 set builds on the map the 1.2 set left.
    write_deltalake(str(_path(sites.primary, "db.s.t0")), pa.table({"a": [6]}), mode="append")
    _round(sites)
    _assert_converged(sites)


def test_backup_killed_after_the_index_is_written_converges(sites: Sites) -> None:
    _setup(sites)
    write_deltalake(str(_path(sites.primary, "db.s.t0")), pa.table({"a": [3]}), mode="append")
    p = drsync("backup", "-c", str(sites.config), env={"DRSYNC_CRASH_AT": "backup.index_written:1"})
    assert p.returncode == -signal.SIGKILL, p.stdout + p.stderr
    drsync("restore", "-c", str(sites.config), check=True)
    write_deltalake(str(_path(sites.primary, "db.s.t1")), pa.table({"a": [4]}), mode="append")
    _round(sites)
    _round(sites)
    _assert_converged(sites)
    assert DeltaTable(str(_path(sites.standby, "db.s.t0"))).version() == 1
