"""A bounded RPO history for the dashboard's chart: the last 24 hours, one sample per step.

The daemon records one sample per pass into `<metadata>/rpo-history.json` of its own side.
At most one sample per `STEP_S` is kept and nothing older than `WINDOW_S`, so the file stays
under ~100 kB whatever the schedule (continuous mode passes every second). Written by temp +
rename like every other record; a damaged file is started afresh (it is a chart, not data).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from drsync.fsutil import atomic_write_bytes
from drsync.site.layout import RPO_HISTORY_FILE as HISTORY_FILE

WINDOW_S = 24 * 3600
STEP_S = 30.0

log = logging.getLogger(__name__)
Sample = tuple[float, int | None]  # (unix time, RPO seconds or None when nothing restored yet)


def load_history(meta: Path) -> list[Sample]:
    try:
        raw = json.loads((meta / HISTORY_FILE).read_bytes())
        return [(float(t), None if rpo is None else int(rpo)) for t, rpo in raw]
    except FileNotFoundError:
        return []
    except (ValueError, TypeError) as e:
        log.warning("RPO history %s unreadable (%s); starting a new one", meta / HISTORY_FILE, e)
        return []


def record_rpo(meta: Path, rpo: int | None, now_s: float, *, step_s: float = STEP_S) -> bool:
    """Add a sample unless the newest is younger than `step_s`; returns whether it was added."""
    samples = load_history(meta)
    if samples and now_s - samples[-1][0] < step_s:
        return False
    samples = [s for s in samples if now_s - s[0] <= WINDOW_S]
    samples.append((now_s, rpo))
    atomic_write_bytes(meta / HISTORY_FILE, json.dumps(samples, separators=(",", ":")).encode())
    return True
