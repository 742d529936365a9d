"""transport=local: the other site's directories are on this host; its calls run in-process."""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from drsync import __version__
from drsync.config import Settings
from drsync.nofollow import read_range_nofollow
from drsync.peer.base import Peer, Say, Toward
from drsync.roles.epoch import RoleRecord, read_role
from drsync.roles.newprimary import NewPrimary
from drsync.roles.side import Side
from drsync.roles.swap import SwapPoint, promote
from drsync.sets.manifest import FORMAT_VERSION
from drsync.site.layout import LOCK_DIR
from drsync.site.locks import lock_holder
from drsync.site.pairing import nearest_existing, prepare_roots
from drsync.site.state import PrimaryState, StandbyState, load_state
from drsync.site.warehouse import TableRef
from drsync.standby.fingerprint import Fingerprint, fingerprint
from drsync.transport.base import Area, Transport
from drsync.transport.local import LocalTransport
from drsync.transport.protocol import PROTOCOL_VERSION

if TYPE_CHECKING:
    from drsync.primary.changes import TableInventory
    from drsync.roles.tablelog import Commits


class LocalPeer(Peer):
    here = True

    def __init__(self, settings: Settings, toward: Toward = "standby") -> None:
        self.settings, self.toward = settings, toward
        self.meta, self.media = settings.metadata_dir(toward), settings.media_dir(toward)
        self._data = LocalTransport(self.media, self.meta)

    @property
    def data(self) -> Transport:
        return self._data

    def hello(self) -> dict[str, Any]:
        return {"version": __version__, "format": FORMAT_VERSION, "protocol": PROTOCOL_VERSION,
                "time": time.time()}

    def df(self, area: Area) -> dict[str, int]:
        usage = shutil.disk_usage(nearest_existing(self.media if area == "media" else self.meta))
        return {"free": usage.free, "total": usage.total}

    def role(self) -> RoleRecord:
        return read_role(self.meta)

    def standby_state(self) -> StandbyState:
        state: StandbyState = load_state(self.meta, StandbyState)
        return state

    def primary_state(self) -> PrimaryState:
        state: PrimaryState = load_state(self.meta, PrimaryState)
        return state

    def replicating(self) -> str | None:
        holder = lock_holder(self.meta / LOCK_DIR, "backup")
        if holder is None:
            return None
        return f"is reachable and replicating (backup round running, pid {holder})"

    def request_restore(self) -> dict[str, Any] | None:
        return None  # the standby's restore runs on its own schedule

    def restore(self) -> None:
        from drsync.standby.restore import run_restore  # imported on use: restore imports much

        run_restore(self.settings.model_copy(update={"restore_delay": timedelta(0)}))

    def promote(self, point: SwapPoint) -> None:
        promote(self.settings, point)

    def fingerprint(self, table: str, version: int, deep: bool, also_hash: list[str]) -> Fingerprint:
        table_dir = TableRef.parse(table).path(self.settings.warehouse(self.toward))
        return fingerprint(table_dir, table, version, deep, also_hash)

    def table_file(self, table: str, rel: str) -> bytes | None:
        ref = TableRef.parse(table)
        found = read_range_nofollow(self.settings.warehouse(self.toward), f"{ref.relpath}/{rel}", 0, -1,
                                    table=table)
        return None if found is None else found[1]

    def prepare(self, check_only: bool, pair: dict[str, str | None]) -> dict[str, Any]:
        return prepare_roots({"media": self.media, "metadata": self.meta}, pair, check_only)

    def probe_back(self) -> str:
        from drsync.peer.probe import probe_from_settings  # imported on use: paramiko is slow

        return probe_from_settings(self.settings)

    def reprotect_info(self) -> dict[str, Any]:
        return NewPrimary(self.settings).info()

    def commits(self, table: str) -> Commits | None:
        return NewPrimary(self.settings).commits(table)

    def reprotected(self, rebuilt: dict[str, TableInventory], drop: list[str]) -> None:
        NewPrimary(self.settings).finish(rebuilt, drop)

    def _side(self) -> Side:
        s = self.settings
        return Side(self.meta, self.media, s.warehouse(self.toward), s.backuprestoreinfo_file)

    def independent_has_state(self) -> bool:
        return self._side().has_state()

    def independent_check_stopped(self) -> None:
        self._side().check_stopped()

    def independent_clean(self, say: Say) -> int:
        return self._side().clean(say)
