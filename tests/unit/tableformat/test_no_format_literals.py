"""No Delta literal outside drsync/tableformat/delta/: everything else works through the
TableFormat protocol, so adding a format is one new package (issue 12).

Scans every string constant of drsync's code (f-string parts included; docstrings, which
explain, are not code) and fails naming file:line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3] / "drsync"
DELTA_PKG = ROOT / "tableformat" / "delta"

# Anywhere inside a string: Delta's file and directory names and action fields.
SUBSTRINGS = ("_delta_log", "_last_checkpoint", ".checkpoint.", "deletionVector", ".crc",
              "_sidecars", ".compacted.", "schemaString", "inCommitTimestamp", "delta.columnMapping",
              "numRecords", "pathOrInlineDv", "delta_scan", "duckdb_extension_delta")
# A whole string: Delta's action names and the file kinds drsync gives Delta's files.
EXACT = ("add", "remove", "metaData", "commitInfo", "protocol", "cdc", "txn", "sidecar", "dv",
         "checkpoint", "last_checkpoint", "crc", "compacted", "domainMetadata",
         "checkpointMetadata", "020d")
PATTERNS = (re.compile(r"\\d\{20\}"),)  # a 20-digit version in a log file name

# (file relative to drsync/, literal): not Delta's, though spelt the same.
HELLO = "the agent's wire protocol version in its hello reply"
ALLOWED = {
    ("transport/agent.py", "protocol"): HELLO,
    ("roles/prepare.py", "protocol"): HELLO,
    ("site/checks.py", "protocol"): HELLO,
    ("peer/local.py", "protocol"): HELLO,
}


def _docstring_ids(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _is_delta(text: str) -> bool:
    return (text in EXACT or any(s in text for s in SUBSTRINGS)
            or any(p.search(text) for p in PATTERNS))


def format_literals(source: str, rel: str) -> list[str]:
    """`rel:line: 'literal'` for every Delta literal in one module's code."""
    tree = ast.parse(source)
    docs = _docstring_ids(tree)
    hits = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                and _is_delta(node.value) and (rel, node.value) not in ALLOWED):
            hits.append(f"{rel}:{node.lineno}: {node.value!r}")
    return hits


def test_no_delta_literal_outside_the_delta_package() -> None:
    modules = [p for p in sorted(ROOT.rglob("*.py")) if DELTA_PKG not in p.parents]
    assert len(modules) > 50  # the scan really covers drsync
    hits = [h for p in modules
            for h in format_literals(p.read_text(encoding="utf-8"), p.relative_to(ROOT).as_posix())]
    assert not hits, "Delta literals outside drsync/tableformat/delta/:\n" + "\n".join(hits)


def delta_imports(source: str, rel: str) -> list[str]:
    """`rel:line: module` for every import of the Delta package (callers use the registry)."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        hits += [f"{rel}:{node.lineno}: {n}" for n in names
                 if n == "drsync.tableformat.delta" or n.startswith("drsync.tableformat.delta.")]
    return hits


def test_only_the_registry_hands_out_formats() -> None:
    outside = [p for p in sorted(ROOT.rglob("*.py")) if (ROOT / "tableformat") not in p.parents]
    hits = [h for p in outside
            for h in delta_imports(p.read_text(encoding="utf-8"), p.relative_to(ROOT).as_posix())]
    assert not hits, "import drsync.tableformat (formats/get/format_of) instead:\n" + "\n".join(hits)
    assert delta_imports("from drsync.tableformat import delta", "x.py")
    assert delta_imports("from drsync.tableformat.delta.log import LOG_DIR", "x.py")


@pytest.mark.parametrize("code", [
    'LOG = "_delta_log"',
    'x = a.get("add")',
    'name = f"{root}/_delta_log/{v:020d}.json"',
    'kinds = ("data", "dv", "cdc")',
    'PAT = re.compile(r"^(\\d{20})\\.json$")',
    'def f():\n    """docs"""\n    return {"metaData": 1}',
])
def test_scanner_finds_delta_literals(code: str) -> None:
    assert format_literals(code, "x.py")


@pytest.mark.parametrize("code", [
    'def f():\n    """Reads `_delta_log` and `add` actions."""\n    return 1',
    'x = "delta"',  # a format's name is how manifests and the registry refer to it
    'x = "data"',
])
def test_scanner_leaves_docstrings_and_names_alone(code: str) -> None:
    assert not format_literals(code, "x.py")
