"""`publication list`: each publication and the tables it resolves to now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drsync.publications.store import ALL_DATABASES, Publication, load_publications
from drsync.site.names import DEFAULT_DB, HIVE_DB_SUFFIX, parse_name, quote_part
from drsync.site.warehouse import Layout, discover_tables
from drsync.tableformat import format_of


def missing_objects(warehouse: Path, pub: Publication, layout: Layout = "dws") -> list[str]:
    """Named databases, schemas and tables that do not exist on the primary (yet)."""
    if pub.db == ALL_DATABASES:
        return []
    db = quote_part(pub.db)
    if layout == "hive":
        base = warehouse if pub.db == DEFAULT_DB else warehouse / (pub.db + HIVE_DB_SUFFIX)
    else:
        base = warehouse / pub.db
    out = [] if base.is_dir() else [f"database {db}"]
    out += [f"schema {db}.{s}" for s in pub.schemas if not (base / parse_name(s)[0]).is_dir()]
    out += [f"table {db}.{t}" for t in pub.tables
            if format_of(base.joinpath(*parse_name(t))) is None]
    return out if base.is_dir() else out[:1]


def list_report(meta: Path, warehouse: Path, layout: Layout = "dws") -> dict[str, Any]:
    pubs = load_publications(meta)
    present = discover_tables(warehouse, layout)
    report: dict[str, Any] = {"configured": pubs is not None, "publications": []}
    for p in pubs.publications if pubs else []:
        report["publications"].append({
            **p.model_dump(), "key": p.key, "describe": p.describe(),
            "tables": [t.name for t in present if p.covers(t.db, t.schema, t.table)],
            "missing": missing_objects(warehouse, p, layout),
        })
    return report
