"""Role facts for show-progress: added next to the spec's fields, which stay unchanged."""

from __future__ import annotations

from typing import Any

from drsync.config import Settings
from drsync.peer import both_sites_here
from drsync.roles.audit import last_entry
from drsync.roles.epoch import read_role, role_facts


def role_fields(settings: Settings, doc: dict[str, Any]) -> dict[str, Any]:
    """`role epoch`, `site roles`, `last role change`; and the failover point from the role
    record when the standby state that held it was replaced by the promotion."""
    metas = [settings.primary_metadata_destination, settings.restore_metadata_destination]
    out: dict[str, Any] = {}
    if both_sites_here(settings):  # over SSH only this host's side is readable here
        roles = {str(m): read_role(m) for m in metas}
    else:
        here = next((m for m in metas if m.exists()), metas[0])
        roles = {str(here): read_role(here)}
    out["role epoch"] = max((r.epoch for r in roles.values()), default=0)
    out["site roles"] = {m: r.role or "unrecorded" for m, r in roles.items()}
    last = last_entry(metas)
    out["last role change"] = (f"{last.get('command')} at {last.get('time')} by {last.get('who')}: "
                               f"{last.get('outcome')}" if last else "")
    if not doc.get("failover recovery point time"):
        for m in metas:
            point = role_facts(m).get("failover_point")
            if isinstance(point, str) and point:
                out["failover recovery point time"] = point
    return out
