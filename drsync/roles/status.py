"""The progress document with role facts: the one place it is assembled.

`show-progress` (json, table, --watch) and `GET /progress` all call `progress_document`, so
they cannot drift apart. Role facts are added next to the spec's fields, which stay unchanged.
"""

from __future__ import annotations

from drsync.config import Settings
from drsync.peer import both_sites_here
from drsync.roles.audit import last_entry
from drsync.roles.epoch import read_role, role_facts
from drsync.site.document import ProgressDocument, RpoForecast, Verification, build_document
from drsync.site.forecast import site_forecast
from drsync.site.progress import read_states, read_verify_state
from drsync.site.state import PrimaryState, StandbyState
from drsync.standby.delay import progress_fields


def progress_document(settings: Settings,
                      states: tuple[PrimaryState, StandbyState] | None = None) -> ProgressDocument:
    """Both sides' progress (read now unless `states` are given) with the role facts."""
    primary, standby = states or read_states(settings)
    doc = build_document(primary, standby)
    doc.rpo_forecast = RpoForecast.model_validate(site_forecast(settings, primary, standby).as_json())
    every = settings.verify_interval
    doc.verification = Verification.of(read_verify_state(settings), standby,
                                       int(every.total_seconds()) if every else None)
    doc.replication_mode = settings.replication_mode
    delay = progress_fields(standby)  # restore-delay, only when set or holding sets back
    doc.restore_delay = delay.get("restore delay")
    doc.held_back_keys = delay.get("held back keys")
    doc.next_apply_time = delay.get("next apply time")
    return add_role_fields(settings, doc)


def add_role_fields(settings: Settings, doc: ProgressDocument) -> ProgressDocument:
    """`role epoch`, `site roles`, `last role change`; and the failover point from the role
    record when the standby state that held it was replaced by the promotion."""
    metas = [settings.primary_metadata_destination, settings.restore_metadata_destination]
    if both_sites_here(settings):  # over SSH only this host's side is readable here
        roles = {str(m): read_role(m) for m in metas}
    else:
        here = next((m for m in metas if m.exists()), metas[0])
        roles = {str(here): read_role(here)}
    doc.role_epoch = max((r.epoch for r in roles.values()), default=0)
    doc.site_roles = {m: r.role or "unrecorded" for m, r in roles.items()}
    last = last_entry(metas)
    doc.last_role_change = (f"{last.get('command')} at {last.get('time')} by {last.get('who')}: "
                            f"{last.get('outcome')}" if last else "")
    if not doc.failover_recovery_point_time:
        for m in metas:
            point = role_facts(m).get("failover_point")
            if isinstance(point, str) and point:
                doc.failover_recovery_point_time = point
    return doc
