"""What drsync asks of the other site: one `Peer`, whatever carries the calls.

A `Peer` is the other site as seen from this host: `toward` says which one ("standby" from the
primary, "primary" from the standby). Its `data` is the `Transport` for bytes (send, write,
read, list); every other call to that site is a method here. `LocalPeer` acts on the other
site's directories on this host (transport=local), `SshPeer` asks its agent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from drsync.config import Settings
from drsync.roles.epoch import RoleRecord
from drsync.site.state import PrimaryState, StandbyState
from drsync.standby.fingerprint import Fingerprint
from drsync.transport.base import Area, Transport

if TYPE_CHECKING:
    from drsync.primary.changes import TableInventory
    from drsync.roles.swap import SwapPoint
    from drsync.roles.tablelog import Commits

Toward = Literal["standby", "primary"]
Say = Callable[[str], None]


class Peer(ABC):
    settings: Settings
    toward: Toward
    #: True when the other site's directories are on this host (its files can be read directly).
    here: bool

    @property
    @abstractmethod
    def data(self) -> Transport:
        """The byte transfer to that site (its media and metadata areas)."""

    def read(self, area: Area, rel: str) -> bytes | None:
        return self.data.read_bytes(area, rel)

    # ---- facts about the other site

    @abstractmethod
    def hello(self) -> dict[str, Any]:
        """version, protocol, format and clock (`time`) of the drsync on that site."""

    @abstractmethod
    def df(self, area: Area) -> dict[str, int]:
        """{"free", "total"} bytes of the filesystem holding that area."""

    @abstractmethod
    def role(self) -> RoleRecord:
        """That site's role record (role and epoch)."""

    def standby_state(self) -> StandbyState:
        raw = self.read("metadata", StandbyState.FILE)
        return StandbyState.model_validate_json(raw) if raw else StandbyState()

    def primary_state(self) -> PrimaryState:
        raw = self.read("metadata", PrimaryState.FILE)
        return PrimaryState.model_validate_json(raw) if raw else PrimaryState()

    @abstractmethod
    def replicating(self) -> str | None:
        """Why that (primary) site counts as alive for failover, or None if it does not."""

    # ---- commands run on the other site

    @abstractmethod
    def request_restore(self) -> dict[str, Any] | None:
        """After shipping: ask the standby to restore now. None where its own schedule runs it."""

    @abstractmethod
    def restore(self) -> None:
        """One restore pass there now (switchover); raises what the pass raised. Ignores
        restore-delay: a switchover's final sets are applied at once (zero loss)."""

    @abstractmethod
    def promote(self, point: SwapPoint) -> None:
        """Switchover: the standby becomes the primary at `point`."""

    @abstractmethod
    def fingerprint(self, table: str, version: int, deep: bool, also_hash: list[str]) -> Fingerprint:
        """That side's fingerprint of one table at one version (verify)."""

    @abstractmethod
    def table_file(self, table: str, rel: str) -> bytes | None:
        """One file of a table as that (primary) site holds it now, None if it has no such file
        (continuous verification fetches a missing or damaged standby file again)."""

    @abstractmethod
    def prepare(self, check_only: bool, pair: dict[str, str | None]) -> dict[str, Any]:
        """Create that site's roots and record the cluster pair (or only report, `check_only`)."""

    @abstractmethod
    def probe_back(self) -> str:
        """Make that site log in back to the primary and return the `drsync version` it finds
        there. That site takes host, user, key and command from its own configuration: a caller
        choosing them would use its keys against any host (docs/security.md)."""

    # ---- reprotect: the new primary's side (the peer opened with purpose "reprotect")

    @abstractmethod
    def reprotect_info(self) -> dict[str, Any]:
        """role, epoch, key, barrier_ms of the new primary and its inventoried tables
        ({name: [version, table_id]})."""

    @abstractmethod
    def commits(self, table: str) -> Commits | None:
        """The new primary's commit hashes of one table (None: it lacks the table)."""

    @abstractmethod
    def reprotected(self, rebuilt: dict[str, TableInventory], drop: list[str]) -> None:
        """The new primary takes the rebuilt inventories and ships again."""

    # ---- set-independent: the other side's check and clean-up

    @abstractmethod
    def independent_has_state(self) -> bool:
        """Whether that side holds DR state; refuses (RoleError) if it is not stopped."""

    @abstractmethod
    def independent_check_stopped(self) -> None:
        """Refuse unless that side is stopped (over SSH done by `independent_has_state`)."""

    @abstractmethod
    def independent_clean(self, say: Say) -> int:
        """Clear that side's DR state; the number of actions (their lines go to `say`)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
