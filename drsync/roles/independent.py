"""set-independent (the DWS tool's command): end the DR relationship on both sides.

Only after stop-backup and stop-restore, with no round or pass running (it says which side is
still going). Deletes the set history csv, the sets (bundles and manifests), the inventories,
barrier maps and DR state on both sides, and makes the standby's replicated tables writable.
The tables themselves are not touched, nor quarantines (data set aside by a role change) or the
audit log. One line per action, as the DWS tool prints; a second run finds nothing to do.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from drsync.config import Settings
from drsync.errors import RoleError
from drsync.locks import lock_holder
from drsync.roles import audit
from drsync.roles.epoch import JOURNAL_FILE, ROLE_FILE, read_role
from drsync.roles.fence import make_writable
from drsync.roles.sites import HISTORY_DIR, Pair, remove, require_local
from drsync.state import LAST_RESTORED, LOCK_DIR, MANIFEST_DIR, PrimaryState, StandbyState, load_state
from drsync.warehouse import DRSYNC_DIR, TableRef

Say = Callable[[str], None]
_SET_DIR = re.compile(r"^\d{8}_\d{6}$")
STATE_FILES = [PrimaryState.FILE, StandbyState.FILE, LAST_RESTORED, ROLE_FILE, "pair.json",
               "stop-backup.intent", "stop-restore.intent", f"{PrimaryState.FILE}.remote-cache",
               f"{StandbyState.FILE}.remote-cache"]


def _sides(pair: Pair) -> list[tuple[Path, Path, Path]]:
    """(metadata, media, warehouse) of each site, whatever role it plays now."""
    return [(pair.pm, pair.pmedia, pair.pw), (pair.sm, pair.smedia, pair.sw)]


def _has_dr_state(pair: Pair) -> bool:
    csv = pair.settings.backuprestoreinfo_file
    for meta, media, wh in _sides(pair):
        if any((meta / n).exists() for n in [*STATE_FILES, csv, MANIFEST_DIR, "tables"]):
            return True
        if (wh / DRSYNC_DIR / "barriers").exists() or _set_dirs(media):
            return True
    return False


def _set_dirs(media: Path) -> list[Path]:
    with contextlib.suppress(FileNotFoundError):
        return [Path(e.path) for e in os.scandir(media) if _SET_DIR.match(e.name) and e.is_dir()]
    return []


def _check_stopped(pair: Pair) -> None:
    for meta, _, _ in _sides(pair):
        if (meta / JOURNAL_FILE).exists():
            raise RoleError(f"set-independent: a role change is unfinished in {meta}",
                            hint="re-run the switchover to complete or roll it back first")
        for model, op in ((PrimaryState, "backup"), (StandbyState, "restore")):
            if not (meta / model.FILE).exists():
                continue
            pid = lock_holder(meta / LOCK_DIR, op)
            if pid is not None:
                raise RoleError(f"set-independent: {op} is still running in {meta} (pid {pid})",
                                hint=f"run drsync stop-{op}, then wait for it to finish")
            stopped = (meta / f"stop-{op}.intent").exists() or load_state(meta, model).state == "stopped"
            if not stopped:
                raise RoleError(f"set-independent: {op} is not stopped ({meta / model.FILE})",
                                hint=f"run drsync stop-{op} first (set-independent needs both stopped)")


def run_set_independent(settings: Settings, config: Path, *, say: Say = print) -> int:
    require_local(settings, "set-independent")
    pair = Pair(settings, config)
    if not _has_dr_state(pair):
        say("nothing to do: neither site holds DR state")
        return 0
    _check_stopped(pair)
    epoch = max(read_role(pair.pm).epoch, read_role(pair.sm).epoch)
    actions = 0
    for meta, media, wh in _sides(pair):
        if (meta / StandbyState.FILE).exists():
            standby: StandbyState = load_state(meta, StandbyState)
            for name in standby.tables:
                tdir = TableRef.parse(name).path(wh)
                if tdir.exists():
                    make_writable(tdir)
            say(f"made {len(standby.tables)} replicated table(s) writable in {wh}")
            actions += 1
        csv = meta / settings.backuprestoreinfo_file
        if remove(csv):
            say(f"deleted {csv}")
            actions += 1
        sets = _set_dirs(media)
        for d in sets:
            remove(d)
        if sets:
            say(f"deleted {len(sets)} set(s) of bundles in {media}")
            actions += 1
        for name, what in ((MANIFEST_DIR, "manifests"), ("tables", "table inventories")):
            if remove(meta / name):
                say(f"deleted {what} {meta / name}")
                actions += 1
        for sub in ("barriers", "staging"):
            if remove(wh / DRSYNC_DIR / sub):
                say(f"deleted {wh / DRSYNC_DIR / sub}")
                actions += 1
        gone = [n for n in STATE_FILES if remove(meta / n)]
        if gone:
            say(f"cleared DR state in {meta}: {', '.join(gone)}")
            actions += 1
        if (meta / HISTORY_DIR).exists():
            say(f"kept {meta / HISTORY_DIR} (state files replaced by role changes, for the record)")
    say(f"set-independent done: {actions} action(s); both sites are independent and writable")
    audit.record([pair.pm, pair.sm], "set-independent", config, f"done: {actions} action(s)", epoch)
    return 0
