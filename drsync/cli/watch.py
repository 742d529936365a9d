"""`drsync show-progress --watch`: the progress of both sides, refreshed until Ctrl-C.

The table shows the same facts as the JSON document: states, steps, progress, the three
rates, pending (unrestored) keys, barrier and RPO. A side that cannot be read shows the error
in place of the table and the watch goes on: the link may come back.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from drsync.config import Settings
from drsync.errors import DrsyncError
from drsync.roles.status import role_fields
from drsync.site.progress import build_document, membership_notes, read_states
from drsync.site.state import local_time

_SIDE_ROWS = ("key", "priorKey", "currentStep", "progress", "failedStep", "errorMsg",
              "actionStartTime", "actionEndTime", "updateTime")


def progress_table(doc: dict[str, Any], notes: list[str] | None = None) -> RenderableType:
    """The show-progress document as a table for a person (both sides side by side)."""
    t = Table(title="drsync progress")
    t.add_column("")
    t.add_column("primary")
    t.add_column("standby")
    p, s = doc["primary cluster"], doc["standby cluster"]
    t.add_row("state", doc["apply"]["backupState"], doc["apply"]["restoreState"])
    for name in _SIDE_ROWS:
        t.add_row(name, str(p[name]), str(s[name]))
    for rate in ("producerRate", "compressRate", "consumerRate"):
        t.add_row(rate, p["backupRate"][rate], s["backupRate"][rate])
    t.add_row("last success", doc["apply"]["backupSuccessTime"], doc["apply"]["restoreSuccessTime"])
    lines = [
        f"unrestored keys: {p['unrestoreKeys']}",
        f"latest barrier: {doc['latestBarrierTime'] or '-'}   "
        f"RPO: {doc['recovery point objective'] or '-'} s",
    ]
    if doc["failover recovery point time"]:
        lines.append(f"failover recovery point: {doc['failover recovery point time']}")
    if "role epoch" in doc:  # added by show-progress (roles/status.py)
        lines.append(f"role epoch: {doc['role epoch']}   last role change: {doc['last role change'] or '-'}")
    lines += notes or []
    return Group(t, *(Text(line) for line in lines))


def _frame(settings: Settings, interval_s: float) -> RenderableType:
    footer = Text(f"{local_time()}: every {interval_s:g} s, Ctrl-C to stop", style="dim")
    try:
        states = read_states(settings)
        doc = build_document(*states)
        doc.update(role_fields(settings, doc))
        return Group(progress_table(doc, membership_notes(*states)), footer)
    except DrsyncError as e:
        return Group(Text(f"error: {e.message}", style="red"), footer)


def watch_progress(settings: Settings, interval_s: float = 2.0, *, console: Console | None = None,
                   refreshes: int | None = None) -> int:
    """Redraw the progress table every `interval_s` until Ctrl-C (or `refreshes` frames); 0."""
    shown = 0
    with Live(console=console, auto_refresh=False, transient=False) as live:
        try:
            while refreshes is None or shown < refreshes:
                live.update(_frame(settings, interval_s), refresh=True)
                shown += 1
                if refreshes is None or shown < refreshes:
                    time.sleep(interval_s)
        except KeyboardInterrupt:
            pass  # Ctrl-C is how a watch ends: not an error
    return 0
