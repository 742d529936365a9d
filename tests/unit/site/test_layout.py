"""drsync.site.layout: every path and name pattern of a site, spelled once.

The scan holds it: a site file name, directory or set-key pattern written as a string
anywhere else in drsync/ (docstrings aside) is named with file and line."""

from __future__ import annotations

import ast
from pathlib import Path

import drsync
from drsync.site import layout
from drsync.site.layout import MetadataLayout, WarehouseLayout
from drsync.site.names import HIVE_DB_SUFFIX
from drsync.site.warehouse import TableRef

PACKAGE = Path(drsync.__file__).parent
# Fragments that only a site path or name contains: any string holding one is a spelling.
FRAGMENTS = (
    r"\d{8}_\d{6}", "index.json", "backuprestoreinfo.csv", ".tar.zst", ".manifest.json", "pair.json",
    "role.json", "role-change.json", "primary-state.json", "standby-state.json", "last-restored.json",
    ".intent", ".remote-cache", "reseed.json", "publications.json", "last-full-set.json", "audit.log",
    "role-history", "drsync.log", "-quarantine", "failover-set-aside", ".lock",
)
# Directory names that are ordinary words elsewhere (a JSON field, a label): a spelling where
# the string is a path component, `something / "barriers"`.
NAMES = ("_drsync", "barriers", "staging", "manifests", "tables", "locks", "logs", "rejected")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def spellings(source: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    docs = _docstrings(tree)
    path_parts = {id(side) for node in ast.walk(tree) if isinstance(node, ast.BinOp)
                  and isinstance(node.op, ast.Div) for side in (node.left, node.right)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            hits = [f for f in FRAGMENTS if f in node.value]
            if id(node) in path_parts:
                hits += [n for n in NAMES if node.value.strip("/") == n]
            found += [(node.lineno, h) for h in hits]
    return sorted(found)


def scan(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel == Path("site/layout.py"):
            continue
        out += [f"{root.name}/{rel}:{line}: {what!r}" for line, what in spellings(path.read_text())]
    return out


def test_no_site_path_is_spelled_outside_the_layout() -> None:
    assert scan(PACKAGE) == [], "use drsync.site.layout (a constant, MetadataLayout or WarehouseLayout)"


def test_the_scan_finds_spellings_but_not_docstrings(tmp_path: Path) -> None:
    (tmp_path / "drsync" / "site").mkdir(parents=True)
    (tmp_path / "drsync" / "x.py").write_text(
        '"""Writes tables/index.json and barriers/."""\n'
        'KEY = r"^(\\d{8}_\\d{6})$"\n'
        'p = meta / "tables" / "index.json"\n'
        'q = wh / "_drsync" / "barriers"\n'
        'name = f"{key}.manifest.json"\n'
        'doc = {"tables": 1, "what": "manifests"}\n')  # JSON fields and labels are not paths
    (tmp_path / "drsync" / "site" / "layout.py").write_text('INDEX = "index.json"\n')
    assert scan(tmp_path / "drsync") == [
        "drsync/x.py:2: '\\\\d{8}_\\\\d{6}'", "drsync/x.py:3: 'index.json'", "drsync/x.py:3: 'tables'",
        "drsync/x.py:4: '_drsync'", "drsync/x.py:4: 'barriers'", "drsync/x.py:5: '.manifest.json'",
    ]


def test_key_patterns() -> None:
    assert layout.manifest_key("20260102_030405.manifest.json") == "20260102_030405"
    assert layout.manifest_key("20260102_030405.manifest.json.tmp") is None
    assert layout.manifest_key("2026010_030405.manifest.json") is None
    assert layout.is_set_key("20260102_030405") and not layout.is_set_key("20260102_030405x")
    assert layout.SET_ENTRY_NAME.match("20260102_030405.manifest.json")
    assert layout.BARRIER_OR_MANIFEST_NAME.match("20260102_030405.json")
    assert layout.BARRIER_MAP_NAME.match("20260102_030405.json")
    assert not layout.BARRIER_MAP_NAME.match("20260102_030405.manifest.json")
    assert layout.bundle_name("20260102_030405", 7, "zstd") == "20260102_030405_0007.tar.zst"
    assert layout.bundle_name("20260102_030405", 7, "none") == "20260102_030405_0007.tar"
    assert layout.manifest_rel("k") == "manifests/k.manifest.json"


def test_paths(tmp_path: Path) -> None:
    meta = MetadataLayout(tmp_path / "m")
    t = TableRef("db", "s", "t")
    assert meta.inventory(t) == tmp_path / "m" / "tables" / "db" / "s" / "t.json"
    assert meta.index == tmp_path / "m" / "tables" / "index.json"
    assert meta.intent("backup") == tmp_path / "m" / "stop-backup.intent"
    assert meta.log_file == tmp_path / "m" / "logs" / "drsync.log"
    meta.inventory(t).parent.mkdir(parents=True)
    meta.inventory(t).write_text("{}")
    meta.index.write_text("{}")  # not an inventory: one level up
    assert [meta.inventory_table(p) for p in meta.inventory_files()] == [("db", "s", "t")]
    wh = WarehouseLayout(tmp_path / "w")
    assert wh.barrier_map("k") == tmp_path / "w" / "_drsync" / "barriers" / "k.json"
    assert wh.quarantine("failover", "x") == tmp_path / "w" / "_drsync" / "failover-quarantine" / "x"


def test_hive_inventories_round_trip_beside_dws_ones(tmp_path: Path) -> None:
    from drsync.site.warehouse import TableRef as Ref

    meta = MetadataLayout(tmp_path)
    for ref in (Ref("db", "s", "t"), Ref("spark", "", "events"), Ref("default", "", "delta-0.8.0")):
        path = meta.inventory(ref)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    meta.index.write_text("{}")  # one level deep: never taken for an inventory
    found = sorted(meta.inventory_table(p) for p in meta.inventory_files())
    assert found == [("db", "s", "t"), ("default", "", "delta-0.8.0"), ("spark", "", "events")]
    assert meta.inventory_tables() == [meta.inventory_table(p) for p in meta.inventory_files()]


def test_inventory_listing_is_what_the_globs_find_in_their_order(tmp_path: Path) -> None:
    """inventory_files/inventory_tables walk `tables/` with scandir (every round): the same
    files, in the same order, as the two globs they replace."""
    meta = MetadataLayout(tmp_path)
    root = meta.inventories
    for rel in ("b/s/t.json", "a/s2/x-y.json", "a/s2/x.json", "a/s1/z.json", "h.db/e.json",
                "h.db/sub/f.json", "a/s1/.hidden.json", "a/s1/notes.txt", "a/s1/.tmp-t.json.1234",
                "g.db/a.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("{}")
    meta.index.write_text("{}")
    expected = sorted(root.glob("*/*/*.json")) + sorted(root.glob(f"*{HIVE_DB_SUFFIX}/*.json"))
    assert meta.inventory_files() == expected
    assert meta.inventory_tables() == [meta.inventory_table(p) for p in expected]
    assert MetadataLayout(tmp_path / "absent").inventory_tables() == []
