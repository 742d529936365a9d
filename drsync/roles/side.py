"""One site's DR state as set-independent sees it (metadata, media, warehouse): whether it
holds any, whether it is stopped, and clearing it. Used on this host and by the agent."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drsync.config import Settings
from drsync.errors import RoleError
from drsync.roles.fence import make_writable
from drsync.roles.sites import remove
from drsync.site.layout import (
    BARRIER_DIR,
    FILE_HASH_DIR,
    HISTORY_DIR,
    INVENTORY_DIR,
    JOURNAL_FILE,
    LAST_FULL_FILE,
    LAST_RESTORED,
    LAST_ROUND_FILE,
    LOCK_DIR,
    MANIFEST_DIR,
    PAIR_FILE,
    PUBLICATIONS_FILE,
    RESEED_FILE,
    ROLE_FILE,
    VERIFY_STATE_FILE,
    WarehouseLayout,
    intent_name,
    is_set_key,
    remote_cache_name,
)
from drsync.site.locks import lock_holder
from drsync.site.state import PrimaryState, StandbyState, load_state
from drsync.site.warehouse import TableRef

Say = Callable[[str], None]
# Publications are part of the DR state (they travel in the manifests): cleared with it; a new
# relationship starts by publishing again (`prepare --all-tables` or `publication create`).
STATE_FILES = [PrimaryState.FILE, StandbyState.FILE, LAST_RESTORED, ROLE_FILE, PAIR_FILE,
               intent_name("backup"), intent_name("restore"), remote_cache_name(PrimaryState.FILE),
               remote_cache_name(StandbyState.FILE), PUBLICATIONS_FILE, RESEED_FILE, LAST_FULL_FILE,
               LAST_ROUND_FILE, VERIFY_STATE_FILE]


@dataclass(frozen=True)
class Side:
    meta: Path
    media: Path
    warehouse: Path | None  # None: unknown here (an agent without --config)
    csv: str

    def has_state(self) -> bool:
        if any((self.meta / n).exists() for n in [*STATE_FILES, self.csv, MANIFEST_DIR, INVENTORY_DIR]):
            return True
        barriers = self.warehouse is not None and WarehouseLayout(self.warehouse).barriers.exists()
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
            stopped = ((self.meta / intent_name(op)).exists()
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
        for name, what in ((MANIFEST_DIR, "manifests"), (INVENTORY_DIR, "table inventories"),
                           (FILE_HASH_DIR, "recorded file hashes"), (BARRIER_DIR, "barrier maps")):
            if remove(self.meta / name):
                say(f"deleted {what} {self.meta / name}")
                actions += 1
        for sub in (WarehouseLayout(wh).barriers, WarehouseLayout(wh).staging) if wh is not None else ():
            if remove(sub):
                say(f"deleted {sub}")
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
        return [Path(e.path) for e in os.scandir(media) if is_set_key(e.name) and e.is_dir()]
    return []


def primary_side(settings: Settings) -> Side:
    return Side(settings.primary_metadata_destination, settings.primary_media_destination,
                settings.primary_warehouse, settings.backuprestoreinfo_file)


def standby_side(settings: Settings) -> Side:
    return Side(settings.restore_metadata_destination, settings.restore_media_destination,
                settings.standby_warehouse, settings.backuprestoreinfo_file)
