"""transport=ssh: the other site through its `drsync agent` (one `SshTransport`, its links)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from drsync.config import Settings
from drsync.peer.base import Peer, Say, Toward
from drsync.roles.epoch import RoleRecord, parse_role, read_role
from drsync.site.layout import ROLE_FILE
from drsync.standby.fingerprint import Fingerprint
from drsync.transport.base import Area, Transport
from drsync.transport.ssh import SshTransport

if TYPE_CHECKING:
    from drsync.primary.changes import TableInventory
    from drsync.roles.swap import SwapPoint
    from drsync.roles.tablelog import Commits


def caller_epoch(settings: Settings, toward: Toward) -> int:
    """The epoch of the site this host plays towards `toward`: said at every link's hello (read
    per connection: a switchover writes this side's new role before its next calls)."""
    return read_role(settings.metadata_dir("primary" if toward == "standby" else "standby")).epoch


class SshPeer(Peer):
    here = False

    def __init__(self, settings: Settings, toward: Toward = "standby", purpose: str = "") -> None:
        self.settings, self.toward = settings, toward
        self.link = SshTransport(settings, peer=toward, purpose=purpose,
                                 role_epoch=lambda: caller_epoch(settings, toward))

    @property
    def data(self) -> Transport:
        return self.link

    def close(self) -> None:
        self.link.close()

    def hello(self) -> dict[str, Any]:
        return self.link.call("hello")

    def df(self, area: Area) -> dict[str, int]:
        reply = self.link.call("df", area=area)
        return {"free": int(reply["free"]), "total": int(reply["total"])}

    def role(self) -> RoleRecord:
        rec = parse_role(self.read("metadata", ROLE_FILE))
        if rec.role is not None or self.toward != "standby":
            return rec
        # a standby from before role records: its state says the epoch
        return RoleRecord(None, max(rec.epoch, self.standby_state().role_epoch))

    def replicating(self) -> str | None:
        return f"{self.link.host} is reachable (its agent answered over SSH)"

    def request_restore(self) -> dict[str, Any] | None:
        return self.link.call_once("restore")

    def restore(self) -> None:
        self.link.call_once("restore", no_delay=True)

    def promote(self, point: SwapPoint) -> None:
        self.link.call_once("promote", **asdict(point))

    def fingerprint(self, table: str, version: int, deep: bool, also_hash: list[str]) -> Fingerprint:
        reply = self.link.call("fingerprint", table=table, version=version, deep=deep, also_hash=also_hash)
        return Fingerprint.model_validate(reply["fingerprint"])

    def table_file(self, table: str, rel: str) -> bytes | None:
        return self.link.read_table_file(table, rel)

    def prepare(self, check_only: bool, pair: dict[str, str | None]) -> dict[str, Any]:
        return self.link.call("prepare", check_only=check_only, **pair)

    def probe_back(self) -> str:
        return str(self.link.call("probe").get("version"))

    def reprotect_info(self) -> dict[str, Any]:
        return self.link.call_once("reprotectinfo")

    def commits(self, table: str) -> Commits | None:
        raw = self.link.call_once("commits", table=table).get("commits")
        return None if raw is None else {int(v): (int(c[0]), str(c[1])) for v, c in raw.items()}

    def reprotected(self, rebuilt: dict[str, TableInventory], drop: list[str]) -> None:
        self.link.call_once("reprotected", inventories={n: i.to_json() for n, i in rebuilt.items()},
                            drop=drop)

    def independent_has_state(self) -> bool:
        # the agent's check refuses, with its reason, unless that side is stopped
        return bool(self.link.call_once("independent", phase="check").get("has_state"))

    def independent_check_stopped(self) -> None:
        pass  # done by the "check" phase above

    def independent_clean(self, say: Say) -> int:
        reply = self.link.call_once("independent", phase="clean")
        for line in reply.get("lines") or []:
            say(str(line))
        return int(reply.get("actions") or 0)
