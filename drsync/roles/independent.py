"""set-independent (the DWS tool's command): end the DR relationship on both sides.

Only after stop-backup and stop-restore, with no round or pass running (it says which side is
still going). Deletes the set history csv, the sets (bundles and manifests), the inventories,
barrier maps and DR state on both sides, and makes the standby's replicated tables writable.
The tables themselves are not touched, nor quarantines (data set aside by a role change),
`role-history/` or the audit log. One line per action, as the DWS tool prints; a second run
finds nothing to do.

Each side is a `Side` (metadata, media, warehouse): both are on this host with
transport=local; over SSH the command runs on the primary-metadata host and the other side
is checked and cleaned by its agent (op `independent`, with its own config).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drsync.config import Settings
from drsync.errors import RoleError
from drsync.primary.fullsets import LAST_FULL_FILE
from drsync.primary.membership import RESEED_FILE
from drsync.publications.store import PUBLICATIONS_FILE
from drsync.roles import audit
from drsync.roles.epoch import JOURNAL_FILE, ROLE_FILE, read_role
from drsync.roles.fence import make_writable
from drsync.roles.sites import HISTORY_DIR, remove
from drsync.site.locks import lock_holder
from drsync.site.state import LAST_RESTORED, LOCK_DIR, MANIFEST_DIR, PrimaryState, StandbyState, load_state
from drsync.site.warehouse import DRSYNC_DIR, TableRef

Say = Callable[[str], None]
_SET_DIR = re.compile(r"^\d{8}_\d{6}$")
# Publications are part of the DR state (they travel in the manifests): cleared with it; a new
# relationship starts by publishing again (`prepare --all-tables` or `publication create`).
STATE_FILES = [PrimaryState.FILE, StandbyState.FILE, LAST_RESTORED, ROLE_FILE, "pair.json",
               "stop-backup.intent", "stop-restore.intent", f"{PrimaryState.FILE}.remote-cache",
               f"{StandbyState.FILE}.remote-cache", PUBLICATIONS_FILE, RESEED_FILE, LAST_FULL_FILE]


@dataclass(frozen=True)
class Side:
    meta: Path
    media: Path
    warehouse: Path | None  # None: unknown here (an agent without --config)
    csv: str

    def has_state(self) -> bool:
        if any((self.meta / n).exists() for n in [*STATE_FILES, self.csv, MANIFEST_DIR, "tables"]):
            return True
        barriers = self.warehouse is not None and (self.warehouse / DRSYNC_DIR / "barriers").exists()
        return barriers or bool(_set_dirs(self.media))

    def check_stopped(self) -> None:
        if (self.meta / JOURNAL_FILE).exists():
            raise RoleError(f"set-independent: a role change is unfinished in {self.meta}",
                            hint="re-run the switchover to complete or roll it back first")
        for model, op in ((PrimaryState, "backup"), (StandbyState, "restore")):
            if not (self.meta / model.FILE).exists():
                continue
            pid = lock_holder(self.meta / LOCK_DIR, op)
            if pid is not None:
                raise RoleError(f"set-independent: {op} is still running in {self.meta} (pid {pid})",
                                hint=f"run drsync stop-{op}, then wait for it to finish")
            stopped = ((self.meta / f"stop-{op}.intent").exists()
                       or load_state(self.meta, model).state == "stopped")
            if not stopped:
                raise RoleError(f"set-independent: {op} is not stopped ({self.meta / model.FILE})",
                                hint=f"run drsync stop-{op} first (set-independent needs both stopped)")
        if (self.meta / StandbyState.FILE).exists() and self.warehouse is None:
            raise RoleError(f"set-independent: {self.meta} is a standby whose warehouse is unknown here",
                            hint="set remote-config-file so the other site's agent has its config")

    def clean(self, say: Say) -> int:
        actions = 0
        wh = self.warehouse
        if (self.meta / StandbyState.FILE).exists() and wh is not None:
            standby: StandbyState = load_state(self.meta, StandbyState)
            for name in standby.tables:
                tdir = TableRef.parse(name).path(wh)
                if tdir.exists():
                    make_writable(tdir)
            say(f"made {len(standby.tables)} replicated table(s) writable in {wh}")
            actions += 1
        if remove(self.meta / self.csv):
            say(f"deleted {self.meta / self.csv}")
            actions += 1
        sets = _set_dirs(self.media)
        for d in sets:
            remove(d)
        if sets:
            say(f"deleted {len(sets)} set(s) of bundles in {self.media}")
            actions += 1
        for name, what in ((MANIFEST_DIR, "manifests"), ("tables", "table inventories")):
            if remove(self.meta / name):
                say(f"deleted {what} {self.meta / name}")
                actions += 1
        for sub in ("barriers", "staging"):
            if wh is not None and remove(wh / DRSYNC_DIR / sub):
                say(f"deleted {wh / DRSYNC_DIR / sub}")
                actions += 1
        gone = [n for n in STATE_FILES if remove(self.meta / n)]
        if gone:
            say(f"cleared DR state in {self.meta}: {', '.join(gone)}")
            actions += 1
        if (self.meta / HISTORY_DIR).exists():
            say(f"kept {self.meta / HISTORY_DIR} (state files replaced by role changes, for the record)")
        return actions


def _set_dirs(media: Path) -> list[Path]:
    with contextlib.suppress(FileNotFoundError):
        return [Path(e.path) for e in os.scandir(media) if _SET_DIR.match(e.name) and e.is_dir()]
    return []


def primary_side(settings: Settings) -> Side:
    return Side(settings.primary_metadata_destination, settings.primary_media_destination,
                settings.primary_warehouse, settings.backuprestoreinfo_file)


def standby_side(settings: Settings) -> Side:
    return Side(settings.restore_metadata_destination, settings.restore_media_destination,
                settings.standby_warehouse, settings.backuprestoreinfo_file)


class _RemoteSide:
    """The standby side through its agent (transport=ssh)."""

    def __init__(self, settings: Settings) -> None:
        from drsync.transport.ssh import SshTransport

        self.link = SshTransport(settings)

    def has_state(self) -> bool:
        return bool(self.link.call_once("independent", phase="check").get("has_state"))

    def check_stopped(self) -> None:
        pass  # done by the "check" phase above, which refuses with the agent's reason

    def clean(self, say: Say) -> int:
        reply = self.link.call_once("independent", phase="clean")
        for line in reply.get("lines") or []:
            say(str(line))
        return int(reply.get("actions") or 0)


def run_set_independent(settings: Settings, config: Path, *, say: Say = print) -> int:
    local = primary_side(settings)
    if settings.transport != "local" and not settings.primary_metadata_destination.exists():
        raise RoleError(f"set-independent over SSH runs on the primary-metadata host: "
                        f"{settings.primary_metadata_destination} does not exist here",
                        hint="run it on the host of primary-metadata-destination")
    remote = _RemoteSide(settings) if settings.transport != "local" else None
    try:
        sides: list[Side | _RemoteSide] = [local, remote if remote is not None else standby_side(settings)]
        has = [s.has_state() for s in sides]  # every side asked: over SSH this is the agent's check
        if not any(has):
            say("nothing to do: neither site holds DR state")
            return 0
        for side in sides:
            side.check_stopped()
        metas = [settings.primary_metadata_destination, settings.restore_metadata_destination]
        epoch = max(read_role(m).epoch for m in metas)
        actions = sum(side.clean(say) for side in reversed(sides))  # the other side first
    finally:
        if remote is not None:
            remote.link.close()
    say(f"set-independent done: {actions} action(s); both sites are independent and writable")
    audit.record(metas, "set-independent", config, f"done: {actions} action(s)", epoch)
    return 0
