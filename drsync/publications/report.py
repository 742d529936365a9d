"""`publication list`: each publication and the tables it resolves to now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drsync.publications.store import ALL_DATABASES, Publication, load_publications
from drsync.site.warehouse import discover_tables
from drsync.tableformat.delta import LOG_DIR


def missing_objects(warehouse: Path, pub: Publication) -> list[str]:
    """Named databases, schemas and tables that do not exist on the primary (yet)."""
    if pub.db == ALL_DATABASES:
        return []
    base = warehouse / pub.db
    out = [] if base.is_dir() else [f"database {pub.db}"]
    out += [f"schema {pub.db}.{s}" for s in pub.schemas if not (base / s).is_dir()]
    out += [f"table {pub.db}.{t}" for t in pub.tables
            if not (base / t.replace(".", "/") / LOG_DIR).is_dir()]
    return out if base.is_dir() else out[:1]


def list_report(meta: Path, warehouse: Path) -> dict[str, Any]:
    pubs = load_publications(meta)
    present = discover_tables(warehouse)
    report: dict[str, Any] = {"configured": pubs is not None, "publications": []}
    for p in pubs.publications if pubs else []:
        report["publications"].append({
            **p.model_dump(), "key": p.key, "describe": p.describe(),
            "tables": [t.name for t in present if p.covers(t.db, t.schema, t.table)],
            "missing": missing_objects(warehouse, p),
        })
    return report
