"""DDL events: what a commit's `metaData`/`protocol` actions changed, in words.

The changes themselves travel in the commits (the standby applies the log as it is); this
only describes them for the manifest, the set history and show-progress. Columns are
matched by their column-mapping id where the table has one (so a rename is a rename, not a
drop and an add), else by name.
"""

from __future__ import annotations

import json
from typing import Any

_REPLACE_OPS = ("CREATE OR REPLACE TABLE", "REPLACE TABLE", "CREATE OR REPLACE TABLE AS SELECT",
                "REPLACE TABLE AS SELECT")


def _columns(schema_string: str | None) -> dict[str, str]:
    """column key (mapping id, else name) -> name, top-level fields only."""
    if not schema_string:
        return {}
    try:
        fields = json.loads(schema_string).get("fields", [])
    except (ValueError, AttributeError):
        return {}
    out = {}
    for f in fields:
        if not isinstance(f, dict) or "name" not in f:
            continue
        cid = (f.get("metadata") or {}).get("delta.columnMapping.id")
        out[f"id:{cid}" if cid is not None else f"name:{f['name']}"] = str(f["name"])
    return out


def describe(events: list[dict[str, Any]], last: dict[str, Any]) -> list[dict[str, Any]]:
    """Add a `change` text to each event, comparing with `last` ({"schema", "configuration",
    "protocol"} of the table before these events; updated in place)."""
    for e in events:
        parts: list[str] = []
        if e["kind"] == "metaData":
            before, after = _columns(last.get("schema")), _columns(e.get("schema"))
            if last.get("schema") is not None:
                added = [after[k] for k in after if k not in before]
                dropped = [before[k] for k in before if k not in after]
                renamed = [f"{before[k]}->{after[k]}" for k in after if k in before and before[k] != after[k]]
                if added:
                    parts.append("columns added: " + ", ".join(added))
                if dropped:
                    parts.append("columns dropped: " + ", ".join(dropped))
                if renamed:
                    parts.append("columns renamed: " + ", ".join(renamed))
            else:
                parts.append(f"schema of {len(after)} column(s)")
            old_conf, conf = last.get("configuration") or {}, e.get("configuration") or {}
            changed = {k: v for k, v in conf.items() if old_conf.get(k) != v}
            if changed and last.get("schema") is not None:
                parts.append("properties: " + ", ".join(f"{k}={v}" for k, v in sorted(changed.items())))
            mode = conf.get("delta.columnMapping.mode")
            if mode and mode != "none":
                parts.append(f"column mapping {mode}")
            if e.get("operation", "").upper() in _REPLACE_OPS or (
                    last.get("table_id") and e.get("table_id") != last.get("table_id")):
                parts.insert(0, "table replaced")
            last.update(schema=e.get("schema"), configuration=conf, table_id=e.get("table_id"))
        elif e["kind"] == "protocol":
            versions = (e.get("minReaderVersion"), e.get("minWriterVersion"))
            feats = sorted(set(e.get("readerFeatures") or []) | set(e.get("writerFeatures") or []))
            old = last.get("protocol")
            verb = "protocol upgraded to" if old is not None and old != list(versions) else "protocol"
            parts.append(f"{verb} reader {versions[0]} writer {versions[1]}"
                         + (f" ({', '.join(feats)})" if feats else ""))
            last["protocol"] = list(versions)
        e["change"] = "; ".join(parts) or "metadata rewritten"
    return events


def event_text(table: str, e: dict[str, Any]) -> str:
    op = f" [{e['operation']}]" if e.get("operation") else ""
    return f"{table}@{e.get('version')}: {e.get('change') or e.get('kind')}{op}"
