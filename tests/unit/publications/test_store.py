"""Publications: validation, coverage, create/alter/drop, cancel, and the round's plan."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from drsync.errors import ConfigError, DrsyncError, UnsafePathError
from drsync.primary.changes import TableInventory
from drsync.primary.membership import (
    clear_reseed,
    inventory_path,
    plan_round,
    read_reseed,
    request_reseed,
)
from drsync.publications.store import (
    Publication,
    alter_publication,
    cancel_objects,
    create_publication,
    drop_publication,
    load_publications,
    publish_everything,
)
from drsync.sets.manifest import FORMAT_VERSION, parse_manifest
from drsync.site.warehouse import TableRef
from drsync.tableformat.delta.ddl import describe


def test_coverage_of_each_kind() -> None:
    all_db = Publication(name="a", db="sales", all_tables=True)
    schemas = Publication(name="b", db="sales", schemas=["pub"])
    tables = Publication(name="c", db="sales", tables=["pub.t"])
    every = Publication(name="d", db="*", all_tables=True, excluded=["hr.x", "ops.y.z"])
    assert all_db.covers("sales", "any", "t") and not all_db.covers("hr", "any", "t")
    assert schemas.covers("sales", "pub", "new") and not schemas.covers("sales", "priv", "t")
    assert tables.covers("sales", "pub", "t") and not tables.covers("sales", "pub", "u")
    assert every.covers("new_db", "s", "t")
    assert not every.covers("hr", "x", "t") and not every.covers("ops", "y", "z")
    assert every.covers("ops", "y", "other")


def test_create_validates_and_refuses_duplicates(tmp_path: Path) -> None:
    create_publication(tmp_path, "p1", "db", schemas=["s"])
    with pytest.raises(ConfigError, match="already exists"):
        create_publication(tmp_path, "p1", "db", all_tables=True)
    with pytest.raises(ConfigError, match="choose --all-tables, or --schema and/or --table"):
        create_publication(tmp_path, "p2", "db", all_tables=True, schemas=["s"])
    with pytest.raises(ConfigError, match="choose --all-tables"):
        create_publication(tmp_path, "p2", "db")
    for bad in ("..", "a/b", "/abs", "", ".hidden"):
        with pytest.raises(DrsyncError):
            create_publication(tmp_path, "p3", bad, all_tables=True)
    with pytest.raises(UnsafePathError):
        create_publication(tmp_path, "p3", "db", tables=["../etc.passwd"])
    with pytest.raises(ConfigError, match=r"schema\.table"):
        create_publication(tmp_path, "p3", "db", tables=["justone"])
    with pytest.raises(ConfigError, match="is not valid"):
        create_publication(tmp_path, "bad name", "db", all_tables=True)
    pubs = load_publications(tmp_path)
    assert pubs is not None and [p.key for p in pubs.publications] == ["db.p1"]


def test_alter_and_drop(tmp_path: Path) -> None:
    create_publication(tmp_path, "p", "db", tables=["s.a"])
    p = alter_publication(tmp_path, "p", add_tables=["s.b"], add_schemas=["t"], drop_tables=["s.a"],
                          drop_schemas=[])
    assert p.tables == ["s.b"] and p.schemas == ["t"]
    p = alter_publication(tmp_path, "db.p", add_tables=[], add_schemas=[], drop_tables=[], drop_schemas=["t"])
    assert p.schemas == []
    with pytest.raises(ConfigError, match="nothing to alter"):
        alter_publication(tmp_path, "p", add_tables=[], add_schemas=[], drop_tables=[], drop_schemas=[])
    with pytest.raises(ConfigError, match="does not exist"):
        alter_publication(tmp_path, "q", add_tables=["s.c"], add_schemas=[], drop_tables=[], drop_schemas=[])
    drop_publication(tmp_path, "p")
    with pytest.raises(ConfigError, match="does not exist"):
        drop_publication(tmp_path, "p")
    pubs = load_publications(tmp_path)
    assert pubs is not None and pubs.publications == []


def _table(wh: Path, name: str) -> None:
    write_deltalake(str(wh.joinpath(*name.split("."))), pa.table({"a": [1]}))


def test_cancel_excludes_removes_and_reports(tmp_path: Path) -> None:
    wh, meta = tmp_path / "wh", tmp_path / "meta"
    for n in ("db.s.a", "db.s.b", "db.t.c", "other.x.y"):
        _table(wh, n)
    create_publication(meta, "everything", "*", all_tables=True)
    create_publication(meta, "named", "db", tables=["s.a"])
    create_publication(meta, "sch", "db", schemas=["t"])
    failed = cancel_objects(meta, wh, ["db.s.a", "db.t", "db.nope", "db.s.zz"])
    missing = "does not exist on the primary"
    assert failed == [("db.nope", missing), ("db.s.zz", missing)]
    pubs = load_publications(meta)
    assert pubs is not None
    assert not pubs.covers(pubs.publications, "db", "s", "a")
    assert not pubs.covers(pubs.publications, "db", "t", "c")
    assert pubs.covers(pubs.publications, "db", "s", "b")
    named = pubs.find("named")
    assert named is not None and named.tables == []
    drop_publication(meta, "everything")
    assert cancel_objects(meta, wh, ["other.x.y"]) == [("other.x.y", "not covered by any publication")]
    assert cancel_objects(meta, wh, None) == []
    pubs = load_publications(meta)
    assert pubs is not None and pubs.publications == []


def test_alter_add_table_lifts_a_cancel(tmp_path: Path) -> None:
    wh, meta = tmp_path / "wh", tmp_path / "meta"
    _table(wh, "db.s.a")
    create_publication(meta, "p", "db", all_tables=True)
    cancel_objects(meta, wh, ["db.s.a"])
    p = alter_publication(meta, "p", add_tables=["s.a"], add_schemas=[], drop_tables=[], drop_schemas=[])
    assert p.covers("db", "s", "a")


def test_plan_round(tmp_path: Path) -> None:
    wh, meta = tmp_path / "wh", tmp_path / "meta"
    for n in ("db.s.a", "db.s.b", "db.u.c"):
        _table(wh, n)
    assert plan_round(meta, wh, None).message.startswith("no publications")
    assert plan_round(meta, wh, None).tables == []
    create_publication(meta, "p", "db", schemas=["s"])
    for name, tid in (("db.u.c", "id-c"), ("db.gone.x", "id-x")):
        path = inventory_path(meta, TableRef.parse(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(TableInventory(version=0, table_id=tid).to_json()))
    plan = plan_round(meta, wh, None)
    assert [t.name for t in plan.tables] == ["db.s.a", "db.s.b"]
    assert {(d.name, d.reason) for d in plan.desync} == {
        ("db.u.c", "no longer published"), ("db.gone.x", "dropped or moved on the primary")}
    assert plan.match_rename("id-x") is not None
    assert [d.name for d in plan.desync] == ["db.u.c"]
    publist = tmp_path / "pub.list"
    publist.write_text("db.other\n")
    with pytest.raises(ConfigError, match=r"unknown publication\(s\): db.other"):
        plan_round(meta, wh, publist)  # a typo desynchronises nothing (tests/security)


def test_reseed_intent(tmp_path: Path) -> None:
    request_reseed(tmp_path, ["db.s.a"])
    request_reseed(tmp_path, ["db.s.b"])
    assert read_reseed(tmp_path) == {"tables": ["db.s.a", "db.s.b"]}
    clear_reseed(tmp_path, False, {"db.s.a"})
    assert read_reseed(tmp_path) == {"tables": ["db.s.b"]}
    request_reseed(tmp_path, None)
    clear_reseed(tmp_path, True, {"db.s.b"})
    assert not (tmp_path / "reseed.json").exists()


def test_publish_everything_is_idempotent(tmp_path: Path) -> None:
    publish_everything(tmp_path)
    publish_everything(tmp_path)
    pubs = load_publications(tmp_path)
    assert pubs is not None and [p.key for p in pubs.publications] == ["*.all"]


def test_broken_publications_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "publications.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"publications\.json"):
        load_publications(tmp_path)


def test_format_1_0_manifest_still_loads() -> None:
    raw = {"format_version": "1.0", "key": "20261123_141502", "prior_key": None,
           "barrier_utc": "x", "barrier_ms": 1, "created_utc": "x"}
    m = parse_manifest(raw, where="old")
    assert m.desync == [] and m.renames == [] and m.publications is None
    assert FORMAT_VERSION == "1.4"
    with pytest.raises(UnsafePathError):
        parse_manifest({**raw, "desync": [{"name": "../x.y.z", "reason": "r"}]}, where="bad")


def _schema(*fields: tuple[str, int | None]) -> str:
    return json.dumps({"type": "struct", "fields": [
        {"name": n, "type": "long", "metadata": {} if i is None else {"delta.columnMapping.id": i}}
        for n, i in fields]})


def test_ddl_descriptions() -> None:
    last: dict[str, object] = {}
    ev = describe([{"kind": "metaData", "schema": _schema(("a", 1), ("b", 2)), "table_id": "t",
                    "configuration": {"delta.columnMapping.mode": "name"}}], last)
    assert ev[0]["change"] == "schema of 2 column(s); column mapping name"
    ev = describe([{"kind": "metaData", "schema": _schema(("a", 1), ("c", 2), ("d", 3)), "table_id": "t",
                    "configuration": {"delta.columnMapping.mode": "name", "k": "v"}, "operation": "X"}], last)
    assert "columns added: d" in ev[0]["change"] and "columns renamed: b->c" in ev[0]["change"]
    assert "properties: k=v" in ev[0]["change"]
    ev = describe([{"kind": "metaData", "schema": _schema(("a", 1)), "table_id": "t2",
                    "configuration": {}, "operation": "CREATE OR REPLACE TABLE"}], last)
    assert ev[0]["change"].startswith("table replaced") and "columns dropped: c, d" in ev[0]["change"]
    last["protocol"] = [1, 2]
    ev = describe([{"kind": "protocol", "minReaderVersion": 3, "minWriterVersion": 7,
                    "readerFeatures": ["deletionVectors"], "writerFeatures": ["deletionVectors"]}], last)
    assert ev[0]["change"] == "protocol upgraded to reader 3 writer 7 (deletionVectors)"
