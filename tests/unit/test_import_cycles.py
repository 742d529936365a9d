"""No import cycles among drsync's modules, counting every import (function-level ones too).

A cycle hidden behind an import inside a function still ties the modules together: neither can
be understood, tested or replaced alone. The package layout is the data flow (docs/architecture.md)
and this test keeps it that way; it names the modules of each cycle it finds.
"""

from __future__ import annotations

import ast
from pathlib import Path

import drsync

ROOT = Path(drsync.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = ["drsync", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            candidates = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for c in candidates:
            while c and c not in known:  # `a.b.c` names module `a.b` when c is an attribute
                c = c.rpartition(".")[0]
            if c and c != name and c != "drsync":
                found.add(c)
    return found


def import_cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    mods = _modules()
    # a package's __init__ importing its own submodules is how a package shows its face; such
    # an edge is not counted (as shared/tools/import_cycles.py does)
    graph = {m: {n for n in _imports(m, p, set(mods)) if not n.startswith(m + ".")}
             for m, p in mods.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycles() -> None:
    assert import_cycles() == [], "import cycles (break each by moving the shared piece down)"


def test_the_check_sees_a_cycle_behind_a_function_level_import(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pkg = tmp_path / "drsync"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from drsync.b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from drsync import a  # hidden in a function\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", pkg)
    assert import_cycles() == [["drsync.a", "drsync.b"]]
