"""The desync guard: a round that would desynchronise more than `desync-guard` of the tables
the standby replicates stops before anything is committed, naming them, until an operator
confirms (`drsync backup --confirm-desync`, or `POST /confirm-desync` on the primary's API).

Desynchronising is how a standby loses tables (with desync-table-operation=drop-desync-table
it deletes them); a typo in a publication list or a publication dropped by mistake must not
do that to most of the standby in one unattended round (docs/security.md).

The API cannot run a round itself (the daemon's loop does), so a confirmation through it is
recorded: the names the last refusal listed, in `desync-confirmed.json`. The next round goes
ahead when what it would desynchronise is within those names, and the record is removed once
the set is committed.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from drsync.errors import DrsyncError
from drsync.fsutil import atomic_write_json, read_json_object
from drsync.sets.manifest import DesyncEntry

REFUSED_FILE = "desync-refused.json"  # {"names": [...]} the last refused round would desynchronise
CONFIRMED_FILE = "desync-confirmed.json"  # {"names": [...]} an operator confirmed through the API


class DesyncGuardError(DrsyncError):
    """A round would desynchronise more tables than desync-guard allows (not confirmed)."""

    code = "DRS510"


def check_desync_guard(meta: Path, guard: float | None, replicated: int, desync: list[DesyncEntry],
                       confirmed: bool, source: Path) -> None:
    """Raise DesyncGuardError when `desync` exceeds `guard` (a share 0..1) of `replicated`
    tables and neither `confirmed` nor a recorded confirmation covers them."""
    names = sorted(d.name for d in desync)
    if guard is None or not names or confirmed or len(names) <= guard * replicated:
        return
    recorded = read_json_object(meta / CONFIRMED_FILE) or {}
    if set(names) <= set(recorded.get("names") or []):
        return
    atomic_write_json(meta / REFUSED_FILE, {"names": names})
    shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    raise DesyncGuardError(
        f"this round would desynchronise {len(names)} of {replicated} replicated tables "
        f"({len(names) / max(replicated, 1):.0%}, desync-guard {guard:.0%}): {shown}; nothing was "
        "committed",
        hint=f"if that is intended, run `drsync backup --confirm-desync -c {source}` (or POST "
             "/confirm-desync to the primary's API); if not, fix the publications or publication-list")


def confirm_refused(meta: Path) -> list[str]:
    """Record the operator's confirmation of the last refused round; returns its names."""
    refused = read_json_object(meta / REFUSED_FILE)
    names = [str(n) for n in (refused or {}).get("names") or []]
    if not names:
        raise DrsyncError("no round was refused by desync-guard: nothing to confirm")
    atomic_write_json(meta / CONFIRMED_FILE, {"names": names})
    return names


def clear_confirmation(meta: Path) -> None:
    """After a committed set: a confirmation is good for one round only."""
    for name in (CONFIRMED_FILE, REFUSED_FILE):
        with contextlib.suppress(FileNotFoundError):
            (meta / name).unlink()
