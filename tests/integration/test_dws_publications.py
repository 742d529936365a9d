"""Publications as the DWS documentation writes them (issue 16, item 6), through the real CLI."""

from __future__ import annotations

import json

import pyarrow as pa
from deltalake import write_deltalake

from tests.helpers import Sites, drsync


def test_schema_and_table_in_one_publication_named_as_documented(sites: Sites) -> None:
    cfg = str(sites.config)
    for rel in ("s1/a", "s1/b", "s2/t", "s2/u", "delta-0.8.0/t"):
        write_deltalake(str(sites.primary / "db" / rel), pa.table({"id": [1]}))
    drsync("publication", "drop", "all", "-c", cfg, check=True)
    r = drsync("publication", "create", "_pub_for_fine_dr", "--db", "db", "--schema", "s1",
               "--table", "s2.t,`delta-0.8.0`.t", "-c", cfg)
    assert r.returncode == 0, r.stderr
    listed = json.loads(drsync("publication", "list", "-c", cfg, "--format", "json", check=True).stdout)
    (pub,) = listed["publications"]
    assert pub["key"] == "db._pub_for_fine_dr"
    assert pub["tables"] == ["db.`delta-0.8.0`.t", "db.s1.a", "db.s1.b", "db.s2.t"]
    (sites.base / "pub.list").write_text("db._pub_for_fine_dr\n")
    drsync("backup", "-c", cfg, "--publication-list", str(sites.base / "pub.list"), check=True)
    drsync("restore", "-c", cfg, check=True)
    assert (sites.standby / "db" / "delta-0.8.0" / "t" / "_delta_log").is_dir()
    assert not (sites.standby / "db" / "s2" / "u").exists()


def test_an_object_list_with_bad_lines_names_each_and_cancels_nothing(sites: Sites) -> None:
    cfg = str(sites.config)
    write_deltalake(str(sites.primary / "db" / "s" / "t"), pa.table({"id": [1]}))
    before = (sites.primary_meta / "publications.json").read_bytes()
    objects = sites.base / "objects.list"
    objects.write_text("db.s.t\ndb..t\n# fine\ndb.s.a b\ndb.s\n../etc.x\n")
    r = drsync("cancel-publication", "-c", cfg, "--object-list", str(objects))
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"error: {objects}:2:")
    assert [ln.split(":")[1] for ln in lines[1:3]] == ["4", "6"]
    assert lines[-1].startswith("hint:") and "nothing was cancelled" in lines[-1]
    assert (sites.primary_meta / "publications.json").read_bytes() == before
    objects.write_text("db.s.t\n")
    assert drsync("cancel-publication", "-c", cfg, "--object-list", str(objects)).returncode == 0
    assert (sites.primary_meta / "publications.json").read_bytes() != before
