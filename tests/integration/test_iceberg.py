"""Iceberg directory tables replicated over rounds (issue 19), read on the standby by DuckDB's
iceberg extension and by pyiceberg at every snapshot, with the primary's directory renamed
away (proves nothing is read from the primary: Iceberg paths are absolute)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import EqualTo
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import StringType

from tests.helpers import Sites, drsync
from tests.iceberg_helpers import (
    IceTable,
    backup_restore,
    batch,
    catalog,
    commit,
    current_metadata,
    duck_rows,
    ice_table,
    iceduck,
    py_rows,
    snapshot_ids,
)

NAME = "db.s.ice"


def _round(sites: Sites) -> None:
    backup_restore(sites.config)


def _every_snapshot(table_dir: Path) -> dict[Any, list[tuple[Any, ...]]]:
    """Rows at every snapshot and at the current state, by both readers (which must agree)."""
    con = iceduck()
    out: dict[Any, list[tuple[Any, ...]]] = {"current": duck_rows(con, table_dir)}
    assert py_rows(table_dir) == out["current"]
    for sid in snapshot_ids(table_dir):
        out[sid] = duck_rows(con, table_dir, sid)
        assert py_rows(table_dir, sid) == out[sid], f"readers disagree at snapshot {sid}"
    return out


def _with_primary_away(sites: Sites, check: Any) -> Any:
    away = sites.primary.with_name("warehouse.away")
    os.rename(sites.primary, away)
    try:
        return check()
    finally:
        os.rename(away, sites.primary)


def _writes() -> list[Any]:
    return [
        lambda t: t.append(batch(100, 4)),
        lambda t: t.overwrite(batch(200, 2)),
        lambda t: t.append(batch(300, 3)),
        lambda t: t.delete(EqualTo("id", 301)),  # copy-on-write: rewrites a data file
        lambda t: t.update_schema().add_column("note", StringType()).commit(),
        lambda t: t.append(pa.table({"id": [400], "name": ["x"], "note": ["new"]})),
        lambda t: t.update_spec().add_field("name", IdentityTransform(), "name_part").commit(),
        lambda t: t.append(pa.table({"id": [500, 501], "name": ["p", "q"], "note": [None, "z"]})),
    ]


def test_directory_table_over_rounds_reads_at_every_snapshot_without_the_primary(
        sites: Sites, ice: IceTable) -> None:
    t, src, dst = ice.table, ice.src, ice.dst
    writes = _writes()
    for r in range(len(writes) + 1):
        if r:
            commit(t, writes[r - 1])
        _round(sites)
        expected = _every_snapshot(src)
        got = _with_primary_away(sites, lambda: _every_snapshot(dst))
        assert got == expected, f"round {r}"
        meta = json.loads(current_metadata(dst).read_bytes())
        assert meta["location"] == str(dst)
        assert str(sites.primary) not in current_metadata(dst).read_text()
    v = drsync("verify", "-c", str(sites.config), "--deep")
    assert v.returncode == 0, v.stdout + v.stderr
    assert "1 of 1 table(s) equal" in v.stdout


def test_expired_snapshots_leave_the_standby_after_the_pointer_switched(sites: Sites, ice: IceTable) -> None:
    t, src, dst = ice.table, ice.src, ice.dst
    for i in range(3):
        commit(t, lambda t, i=i: t.overwrite(batch(10 * i, 2)))
    _round(sites)
    before = {p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file()}
    keep = t.current_snapshot().snapshot_id
    commit(t, lambda t: t.maintenance.expire_snapshots().by_ids(
        [s.snapshot_id for s in t.metadata.snapshots if s.snapshot_id != keep]).commit())
    _round(sites)
    after = {p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file()}
    assert len(after) < len(before)
    assert _with_primary_away(sites, lambda: _every_snapshot(dst)) == _every_snapshot(src)
    assert len(snapshot_ids(dst)) == 1


def test_metadata_pointing_outside_the_table_is_refused_by_name(sites: Sites) -> None:
    cat = catalog(sites.base / "scratch-catalog")
    outside = sites.base / "elsewhere"
    src = sites.primary / "db" / "s" / "ice"
    cat.create_namespace("db")
    t = cat.create_table("db.ice", schema=batch(0, 1).schema, location=str(src),
                         properties={"write.data.path": str(outside)})  # data files leave the table
    commit(t, lambda t: t.append(batch(0, 2)))
    p = drsync("backup", "-c", str(sites.config))
    out = p.stdout + p.stderr
    assert p.returncode != 0
    assert NAME in out and "outside the table's location" in out, out
    assert "Traceback" not in out
    assert not (sites.standby / "db" / "s" / "ice").exists()


def test_mixed_set_with_a_delta_table(sites: Sites, ice: IceTable) -> None:
    from deltalake import DeltaTable, write_deltalake

    t, src = ice.table, ice.src
    delta_src, delta_dst = sites.primary / "db" / "s" / "dl", sites.standby / "db" / "s" / "dl"
    write_deltalake(str(delta_src), batch(0, 3))
    for r in range(3):
        if r:
            commit(t, lambda t, r=r: t.append(batch(10 * r, 2)))
            write_deltalake(str(delta_src), batch(10 * r, 2), mode="append")
        _round(sites)
        manifests = sorted((sites.standby_meta / "manifests").glob("*.json"))
        formats = {tt["format"] for tt in json.loads(manifests[-1].read_bytes())["tables"]}
        assert formats == {"iceberg", "delta"}, formats
        assert _with_primary_away(sites, lambda: _every_snapshot(sites.standby / "db" / "s" / "ice")) \
            == _every_snapshot(src)
        assert DeltaTable(str(delta_dst)).to_pyarrow_table().sort_by("id") == \
            DeltaTable(str(delta_src)).to_pyarrow_table().sort_by("id")


def test_directory_table_over_real_sshd(sshd: Any, tmp_path: Path) -> None:
    from tests.integration.test_ssh import ssh_sites

    sites = ssh_sites(tmp_path / "s", sshd)
    ice = ice_table(sites)
    t, src, dst = ice.table, ice.src, ice.dst
    for r, write in enumerate(_writes()[:4]):
        if r:
            commit(t, write)
        _round(sites)
        assert _with_primary_away(sites, lambda: _every_snapshot(dst)) == _every_snapshot(src), f"round {r}"


def test_a_local_commit_on_the_standby_is_refused_not_overwritten(sites: Sites, ice: IceTable) -> None:
    t, dst = ice.table, ice.dst
    _round(sites)
    local = catalog(sites.base / "standby-writer")
    local.create_namespace("db")
    commit(local.register_table("db.ice", str(current_metadata(dst))), lambda t: t.append(batch(900, 1)))
    pointer = current_metadata(dst)
    commit(t, lambda t: t.append(batch(10, 1)))
    drsync("backup", "-c", str(sites.config), check=True)
    r = drsync("restore", "-c", str(sites.config))
    assert r.returncode != 0
    assert "db.s.ice" in r.stderr and "behind drsync's back" in r.stderr, r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert current_metadata(dst) == pointer  # the local commit is left as it was


def test_schema_and_partition_spec_changes_are_ddl_events_in_show_progress(sites: Sites,
                                                                          ice: IceTable) -> None:
    from deltalake import write_deltalake

    dl = sites.primary / "db" / "s" / "dl"
    write_deltalake(str(dl), batch(0, 2))
    _round(sites)
    commit(ice.table, lambda t: t.update_schema().add_column("note", StringType()).commit())
    commit(ice.table, lambda t: t.update_spec().add_field("name", IdentityTransform(), "name_part").commit())
    commit(ice.table, lambda t: t.append(pa.table({"id": [9], "name": ["n"], "note": ["x"]})))
    write_deltalake(str(dl), pa.table({"id": [5], "name": ["d"], "extra": [1.5]}), mode="append",
                    schema_mode="merge")
    _round(sites)
    table = drsync("show-progress", "-c", str(sites.config), "--format", "table", check=True).stdout
    ddl = [line.strip() for line in table.splitlines() if line.strip().startswith("DDL ")]
    ice_events = [d for d in ddl if "db.s.ice@" in d]
    assert any("added column note" in d for d in ice_events), table
    assert any("partition spec now [identity(" in d for d in ice_events), table
    assert any("db.s.dl@" in d and "extra" in d for d in ddl), table  # Delta's in the same set
    # A round that changes no schema adds no event.
    commit(ice.table, lambda t: t.append(pa.table({"id": [10], "name": ["m"], "note": ["y"]})))
    _round(sites)
    again = drsync("show-progress", "-c", str(sites.config), "--format", "table", check=True).stdout
    assert [line for line in again.splitlines() if line.strip().startswith("DDL ")] == \
        [line for line in table.splitlines() if line.strip().startswith("DDL ")]
