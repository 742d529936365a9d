"""Publications decide what is protected (issue 5): real deltalake writers, the real CLI,
a real standby, DuckDB as the independent reader."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, TableFeatures, write_deltalake

from drsync.sets.manifest import load_manifest
from tests.helpers import Sites, drsync, duck, rows


def _round(sites: Sites, *backup_args: str) -> str:
    b = drsync("backup", "-c", str(sites.config), *backup_args, check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    return b.stdout + b.stderr


def _cli(sites: Sites, *args: str, code: int = 0) -> str:
    p = drsync(*args, "-c", str(sites.config))
    assert p.returncode == code, f"drsync {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout + p.stderr


def _write(wh: Path, name: str, values: list[int], mode: str = "append") -> Path:
    path = wh.joinpath(*name.split("."))
    write_deltalake(str(path), pa.table({"a": values}), mode=mode)  # type: ignore[arg-type]
    return path


def _standby(sites: Sites, name: str) -> Path:
    return sites.standby.joinpath(*name.split("."))


def _last_manifest(sites: Sites) -> object:
    key = json.loads((sites.primary_meta / "primary-state.json").read_text())["last_key"]
    return load_manifest(sites.primary_meta / "manifests" / f"{key}.manifest.json")


def _only(sites: Sites, *create: str) -> None:
    """Replace make_sites' publish-everything with the given publication."""
    _cli(sites, "publication", "drop", "all")
    _cli(sites, "publication", "create", *create)


def test_without_publications_nothing_is_replicated_or_desynced(sites: Sites) -> None:
    _write(sites.primary, "db.s.t", [1])
    _round(sites)
    assert rows(duck(), _standby(sites, "db.s.t")) == [(1,)]
    (sites.primary_meta / "publications.json").unlink()  # an upgrade: never configured
    _write(sites.primary, "db.s.t", [2])
    out = _round(sites)
    assert "no publications: nothing is protected" in out
    assert rows(duck(), _standby(sites, "db.s.t")) == [(1,)], "nothing replicated, nothing dropped"
    doc = json.loads(drsync("show-progress", "-c", str(sites.config), "--format", "json").stdout)
    assert "no publications" in doc["primary cluster"]["errorMsg"]
    listing = _cli(sites, "publication", "list")
    assert "no publications" in listing


def test_publication_kinds_and_a_schema_picks_up_a_new_table(sites: Sites) -> None:
    for name in ("sales.pub.a", "sales.pub.b", "sales.priv.c", "hr.x.d", "ops.y.e", "ops.z.f"):
        _write(sites.primary, name, [1])
    _cli(sites, "publication", "drop", "all")
    _cli(sites, "publication", "create", "hrall", "--db", "hr", "--all-tables")
    _cli(sites, "publication", "create", "salespub", "--db", "sales", "--schema", "pub")
    out = _cli(sites, "publication", "create", "opst", "--db", "ops", "--table", "y.e,later.g")
    assert "ops.later.g does not exist" in out  # accepted with a warning
    listing = json.loads(_cli(sites, "publication", "list", "--format", "json"))
    by_key = {p["key"]: p for p in listing["publications"]}
    assert by_key["ops.opst"]["tables"] == ["ops.y.e"]
    assert by_key["ops.opst"]["missing"] == ["table ops.later.g"]
    assert "MISSING table ops.later.g" in _cli(sites, "publication", "list")
    _round(sites)
    for name in ("sales.pub.a", "sales.pub.b", "hr.x.d", "ops.y.e"):
        assert rows(duck(), _standby(sites, name)) == [(1,)], name
    for name in ("sales.priv.c", "ops.z.f"):
        assert not _standby(sites, name).exists(), name
    # A table created later in the published schema: carried in full by the next round.
    _write(sites.primary, "sales.pub.new", [5])
    _write(sites.primary, "sales.pub.new", [6])
    _round(sites)
    m = _last_manifest(sites)
    new = [t for t in m.tables if t.name == "sales.pub.new"]  # type: ignore[attr-defined]
    assert new and new[0].mode == "full"
    assert rows(duck(), _standby(sites, "sales.pub.new")) == [(5,), (6,)]
    # ... and the named table that did not exist yet follows once created.
    _write(sites.primary, "ops.later.g", [9])
    _round(sites)
    assert rows(duck(), _standby(sites, "ops.later.g")) == [(9,)]


def test_alter_add_and_drop_and_pub_list(sites: Sites, tmp_path: Path) -> None:
    for name in ("db.s.a", "db.s.b", "db.t.c"):
        _write(sites.primary, name, [1])
    _only(sites, "p1", "--db", "db", "--table", "s.a")
    _cli(sites, "publication", "create", "p2", "--db", "db", "--schema", "t")
    _round(sites)
    assert not _standby(sites, "db.s.b").exists()
    _cli(sites, "publication", "alter", "p1", "--add-table", "s.b")
    _round(sites)
    assert rows(duck(), _standby(sites, "db.s.b")) == [(1,)]
    _cli(sites, "publication", "alter", "p1", "--drop-table", "s.a")
    out = _round(sites, "--confirm-desync")  # 1 of 3 tables: above desync-guard's 20 %
    assert "db.s.a" in out and "desynchronised" in out
    _write(sites.primary, "db.s.a", [2])
    _round(sites)
    assert rows(duck(), _standby(sites, "db.s.a")) == [(1,)], "a desynchronised table is not updated"
    state = json.loads((sites.standby_meta / "standby-state.json").read_text())
    assert "db.s.a" in state["desynced"] and "db.s.a" not in state["tables"]
    # pub.list: only p1 is used; p2's tables are desynchronised.
    publist = tmp_path / "pub.list"
    publist.write_text("# rounds use these\ndb.p1\n")
    with open(sites.config, "a") as f:
        f.write(f"publication-list={publist}\n")
    _write(sites.primary, "db.t.c", [2])
    out = _round(sites, "--confirm-desync")
    assert "db.t.c" in out
    assert rows(duck(), _standby(sites, "db.t.c")) == [(1,)]
    publist.write_text("db.p1\nnot a name\n")
    b = drsync("backup", "-c", str(sites.config))
    assert b.returncode == 2 and f"{publist}:2" in b.stderr, b.stderr
    assert "Traceback" not in b.stderr
    # --publication-list on the command line wins over the key: with p2 again, db.t.c follows.
    both = tmp_path / "both.list"
    both.write_text("db.p1\ndb.p2\n")
    b = drsync("backup", "-c", str(sites.config), "--publication-list", str(both))
    assert b.returncode == 0, b.stdout + b.stderr
    _cli(sites, "restore")
    assert rows(duck(), _standby(sites, "db.t.c")) == [(1,), (2,)]


@pytest.mark.parametrize("operation", ["none", "log-desync-table", "drop-desync-table"])
def test_cancel_by_object_list_applies_desync_table_operation(
    sites: Sites, tmp_path: Path, operation: str
) -> None:
    with open(sites.config, "a") as f:
        f.write(f"desync-table-operation={operation}\n")
    for name in ("db.s.a", "db.s.b", "db.u.c", "db.v.keep"):
        _write(sites.primary, name, [1])
    _round(sites)
    # The standby's own table, never replicated: writable throughout.
    local = _write(sites.standby, "local.x.mine", [100])
    objects = tmp_path / "objects.txt"
    objects.write_text("db.s.a  # one table\ndb.u\nnope.s.t\n")
    (sites.primary / "db" / "w").mkdir()
    _cli(sites, "publication", "create", "p2", "--db", "db", "--table", "s.a")
    out = _cli(sites, "cancel-publication", "--object-list", str(objects), code=3)
    failed = (tmp_path / "objects.txt.failed").read_text()
    assert failed == "nope.s.t\tdoes not exist on the primary\n", failed
    assert "1 object(s) not cancelled" in out
    _write(sites.primary, "db.s.b", [2])
    out = _round(sites, "--confirm-desync")
    assert "desynchronised" in out
    assert rows(duck(), _standby(sites, "db.s.b")) == [(1,), (2,)]
    for name in ("db.s.a", "db.u.c"):
        if operation == "drop-desync-table":
            assert not _standby(sites, name).exists()
        else:
            assert rows(duck(), _standby(sites, name)) == [(1,)]
            assert not os.access(_standby(sites, name), os.W_OK) or os.geteuid() == 0
            assert oct(_standby(sites, name).stat().st_mode & 0o222) == "0o0", "stays read-only"
    r = drsync("restore", "-c", str(sites.config), check=True)
    assert ("is desynchronised" in r.stderr) == (operation == "log-desync-table")
    write_deltalake(str(local), pa.table({"a": [101]}), mode="append")
    assert rows(duck(), local) == [(100,), (101,)]
    assert rows(duck(), _standby(sites, "db.v.keep")) == [(1,)]


def test_all_cancel_desynchronises_everything(sites: Sites) -> None:
    with open(sites.config, "a") as f:
        f.write("desync-table-operation=drop-desync-table\n")
    _write(sites.primary, "db.s.a", [1])
    _round(sites)
    _cli(sites, "cancel-publication", "--all-cancel")
    out = _round(sites, "--confirm-desync")
    assert "db.s.a" in out and not _standby(sites, "db.s.a").exists()
    assert json.loads((sites.primary_meta / "publications.json").read_text()) == {"publications": []}


def test_dropped_on_the_primary_becomes_desynchronised(sites: Sites) -> None:
    with open(sites.config, "a") as f:
        f.write("desync-table-operation=drop-desync-table\n")
    p = _write(sites.primary, "db.s.gone", [1])
    _write(sites.primary, "db.s.stays", [1])
    _round(sites)
    shutil.rmtree(p)
    out = _round(sites, "--confirm-desync")
    assert "db.s.gone" in out
    assert not _standby(sites, "db.s.gone").exists()
    assert rows(duck(), _standby(sites, "db.s.stays")) == [(1,)]
    assert not (sites.primary_meta / "tables" / "db" / "s" / "gone.json").exists()


def test_recreated_between_rounds_replaces_whole_table(sites: Sites) -> None:
    p = _write(sites.primary, "db.s.t", [1])
    _write(sites.primary, "db.s.t", [2])
    _write(sites.primary, "db.s.t", [3])
    _round(sites)
    shutil.rmtree(p)
    _write(sites.primary, "db.s.t", [10])  # same name, new table id, version 0 again
    out = _round(sites)
    assert "re-created" in out
    s = _standby(sites, "db.s.t")
    assert rows(duck(), s) == [(10,)]
    assert DeltaTable(str(s)).version() == 0
    on_primary = sorted(str(x.relative_to(p)) for x in p.rglob("*") if x.is_file())
    on_standby = sorted(str(x.relative_to(s)) for x in s.rglob("*") if x.is_file())
    assert on_standby == on_primary, "old and new files mixed"
    assert not list(s.parent.glob(".*drsync*"))
    _write(sites.primary, "db.s.t", [11])
    _round(sites)
    assert rows(duck(), s) == [(10,), (11,)]


def test_renamed_table_is_moved_not_copied(sites: Sites) -> None:
    big = pa.table({"a": list(range(200_000))})
    p = sites.primary / "db" / "s" / "old"
    write_deltalake(str(p), big)
    _round(sites)
    new = sites.primary / "db" / "s2" / "new"
    new.parent.mkdir()
    os.rename(p, new)
    write_deltalake(str(new), pa.table({"a": [-1]}), mode="append")
    out = _round(sites)
    assert "moved: db.s.old -> db.s2.new" in out
    m = _last_manifest(sites)
    assert m.data_bytes < 20_000, f"{m.data_bytes} bytes shipped for a rename"  # type: ignore[attr-defined]
    assert not _standby(sites, "db.s.old").exists()
    assert rows(duck(), _standby(sites, "db.s2.new")) == rows(duck(), new)
    state = json.loads((sites.standby_meta / "standby-state.json").read_text())
    assert "db.s2.new" in state["tables"] and "db.s.old" not in state["tables"]
    assert not state["desynced"]


def test_reseed_copies_again_and_the_rest_keeps_replicating(sites: Sites) -> None:
    _write(sites.primary, "db.s.a", [1])
    _write(sites.primary, "db.s.b", [1])
    _round(sites)
    bad = next((_standby(sites, "db.s.a")).rglob("*.parquet"))
    os.chmod(bad.parent, 0o755)
    bad.unlink()  # the operator no longer trusts this copy
    _cli(sites, "reseed", "--table", "db.s.a")
    _write(sites.primary, "db.s.b", [2])
    _round(sites)
    m = _last_manifest(sites)
    by = {t.name: t for t in m.tables}  # type: ignore[attr-defined]
    assert by["db.s.a"].replace and by["db.s.a"].mode == "full"
    assert rows(duck(), _standby(sites, "db.s.a")) == [(1,)]
    assert rows(duck(), _standby(sites, "db.s.b")) == [(1,), (2,)]
    assert not (sites.primary_meta / "reseed.json").exists()
    assert _cli(sites, "reseed", code=2)
    _cli(sites, "reseed", "--all")
    _round(sites)
    m = _last_manifest(sites)
    assert sorted(t.name for t in m.tables if t.replace) == ["db.s.a", "db.s.b"]  # type: ignore[attr-defined]
    assert rows(duck(), _standby(sites, "db.s.b")) == [(1,), (2,)]


def _commit(table: Path, version: int, actions: list[dict[str, object]]) -> None:
    path = table / "_delta_log" / f"{version:020d}.json"
    path.write_text("".join(json.dumps(a) + "\n" for a in actions))


def test_column_mapping_rename_and_drop_read_by_duckdb(sites: Sites) -> None:
    p = sites.primary / "db" / "s" / "cm"
    write_deltalake(str(p), pa.table({"id": [1, 2], "name": ["a", "b"], "x": [1.0, 2.0]}),
                    configuration={"delta.columnMapping.mode": "name", "delta.minReaderVersion": "2",
                                   "delta.minWriterVersion": "5"})
    _round(sites)
    md = next(json.loads(line)["metaData"] for line in
              (p / "_delta_log" / f"{0:020d}.json").read_text().splitlines() if '"metaData"' in line)
    schema = json.loads(md["schemaString"])
    schema["fields"][1]["name"] = "label"  # RENAME COLUMN name TO label (physical name kept)
    renamed = {**md, "schemaString": json.dumps(schema)}
    _commit(p, 1, [{"commitInfo": {"operation": "RENAME COLUMN", "timestamp": 0}}, {"metaData": renamed}])
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "x"]  # DROP COLUMN x
    _commit(p, 2, [{"commitInfo": {"operation": "DROP COLUMNS", "timestamp": 0}},
                   {"metaData": {**md, "schemaString": json.dumps(schema)}}])
    con = duck()
    assert rows(con, p) == [(1, "a"), (2, "b")]
    _round(sites)
    s = _standby(sites, "db.s.cm")
    assert rows(con, s) == [(1, "a"), (2, "b")]
    cols = [c[0] for c in con.execute(f"DESCRIBE SELECT * FROM delta_scan('{s}')").fetchall()]
    assert cols == ["id", "label"]
    m = _last_manifest(sites)
    changes = [e["change"] for t in m.tables for e in t.ddl]  # type: ignore[attr-defined]
    assert any("columns renamed: name->label" in c for c in changes), changes
    assert any("columns dropped: x" in c for c in changes), changes
    hist = (sites.standby_meta / "backuprestoreinfo.csv").read_text()
    assert "name->label" in hist
    table = _cli(sites, "show-progress", "--format", "table", code=0)
    assert "name->label" in table


def test_schema_evolution_and_replace_with_new_schema(sites: Sites) -> None:
    p = _write(sites.primary, "db.s.evo", [1])
    _round(sites)
    write_deltalake(str(p), pa.table({"a": [2], "b": ["new"]}), mode="append", schema_mode="merge")
    DeltaTable(str(p)).alter.set_table_properties({"delta.appendOnly": "false"})
    DeltaTable(str(p)).alter.add_feature(TableFeatures.DeletionVectors, allow_protocol_versions_increase=True)
    _round(sites)
    s = _standby(sites, "db.s.evo")
    assert rows(duck(), s) == rows(duck(), p)
    m = _last_manifest(sites)
    changes = [e["change"] for t in m.tables for e in t.ddl]  # type: ignore[attr-defined]
    assert any("columns added: b" in c for c in changes), changes
    assert any("properties: delta.appendOnly=false" in c for c in changes), changes
    assert "protocol upgraded to reader 3 writer 7 (deletionVectors)" in changes, changes
    assert DeltaTable(str(s)).protocol().min_reader_version == 3
    write_deltalake(str(p), pa.table({"z": [7.5]}), mode="overwrite", schema_mode="overwrite")
    _round(sites)
    assert rows(duck(), s) == [(7.5,)]
    m = _last_manifest(sites)
    changes = [e["change"] for t in m.tables for e in t.ddl]  # type: ignore[attr-defined]
    assert any("columns added: z" in c and "columns dropped: a, b" in c for c in changes), changes


def test_publications_travel_to_the_standby(sites: Sites) -> None:
    _write(sites.primary, "db.s.a", [1])
    _cli(sites, "publication", "create", "extra", "--db", "db", "--schema", "s")
    _round(sites)
    assert ((sites.standby_meta / "publications.json").read_text()
            == (sites.primary_meta / "publications.json").read_text())


@pytest.mark.parametrize("bad", ["../etc.x", "/abs.x", "db/x.y", "a..b", "db.s.t.u"])
def test_names_with_path_tricks_are_refused(sites: Sites, tmp_path: Path, bad: str) -> None:
    objects = tmp_path / "objects"
    objects.write_text(f"db.s.t\n{bad}\n")
    p = drsync("cancel-publication", "-c", str(sites.config), "--object-list", str(objects))
    assert p.returncode == 2 and f"{objects}:2" in p.stderr, p.stderr
    q = drsync("publication", "create", "x", "-c", str(sites.config), "--db", "db", "--table", bad)
    assert q.returncode in (1, 2) and q.stderr.startswith("error:"), q.stderr
