"""The role epoch: which side a metadata directory plays, and refusing anything older.

Each metadata destination holds a tiny `role.json` ({"role", "epoch"}), written by every role
change together with the side's state file (whose `role_epoch` carries the same number). It is
tiny on purpose: a primary reads its peer's copy every round (one small read over SSH) to
notice that it was failed over, and the agent reads its own at `hello`.

An old primary that comes back after a failover holds an older epoch than the new primary:
its rounds, its sets and its agent calls are refused until `reprotect` makes it a standby of
the new epoch. Nothing of an older epoch is ever applied or shipped (no split brain).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from drsync.errors import RoleError
from drsync.fsutil import atomic_write_json, read_json, read_json_object
from drsync.site.state import PrimaryState, StandbyState

ROLE_FILE = "role.json"
JOURNAL_FILE = "role-change.json"  # an unfinished role change (see switchover.py)
Role = Literal["primary", "standby", "independent"]


@dataclass(frozen=True)
class RoleRecord:
    role: Role | None  # None: no role recorded yet (before the first role change)
    epoch: int


def parse_role(raw: bytes | None) -> RoleRecord:
    if not raw:
        return RoleRecord(None, 0)
    try:
        obj = json.loads(raw)
        role, epoch = obj.get("role"), int(obj.get("epoch", 0))
    except (ValueError, AttributeError, TypeError):
        return RoleRecord(None, 0)
    return RoleRecord(role if role in ("primary", "standby", "independent") else None, epoch)


def read_role(meta: Path) -> RoleRecord:
    """The recorded role of a metadata directory; the state files tell when none is recorded."""
    try:
        rec = parse_role((meta / ROLE_FILE).read_bytes())
    except FileNotFoundError:
        rec = RoleRecord(None, 0)
    if rec.role is not None:
        return rec
    epoch = 0
    for model in (PrimaryState, StandbyState):
        path = meta / model.FILE
        if path.exists():
            with contextlib.suppress(ValueError, OSError, AttributeError):
                epoch = max(epoch, int(read_json(path).get("role_epoch", 0)))
    return RoleRecord(None, max(rec.epoch, epoch))


def write_role(meta: Path, role: Role, epoch: int, **extra: str) -> None:
    """Record the role (and facts of the change, e.g. the failover point, for show-progress)."""
    atomic_write_json(meta / ROLE_FILE, {"role": role, "epoch": epoch, **extra})


def role_facts(meta: Path) -> dict[str, object]:
    return read_json_object(meta / ROLE_FILE) or {}


def refuse_older(caller_epoch: int, own_epoch: int, what: str) -> None:
    """The one refusal of the past: `what` comes from an older epoch than this site's."""
    if caller_epoch < own_epoch:
        raise RoleError(
            f"{what} comes from role epoch {caller_epoch}, older than this site's {own_epoch}: "
            "refused (a primary that was failed over?)",
            hint="on the old primary, run `drsync reprotect` to make it the new primary's standby",
        )


# Metadata directories whose role change this process is carrying out: its own rounds (the
# switchover's final round) run despite the journal.
_changing: set[Path] = set()


@contextlib.contextmanager
def changing_roles(meta: Path) -> Iterator[None]:
    _changing.add(meta)
    try:
        yield
    finally:
        _changing.discard(meta)


def assert_site_role(meta: Path, expected: Literal["primary", "standby"], command: str) -> None:
    """Refuse to run a primary's round where this site is a standby, and vice versa, or while
    a role change is unfinished (its journal is in the directory)."""
    if (meta / JOURNAL_FILE).exists() and meta not in _changing:
        raise RoleError(f"{command}: a role change is unfinished here ({meta / JOURNAL_FILE})",
                        hint="re-run the role command (switchover) to complete or roll it back")
    rec = read_role(meta)
    wrong_file = meta / (StandbyState.FILE if expected == "primary" else PrimaryState.FILE)
    if rec.role not in (None, expected) or (rec.role is None and wrong_file.exists()):
        actual = rec.role or ("standby" if expected == "primary" else "primary")
        raise RoleError(
            f"{command}: {meta} belongs to the {actual} since role epoch {rec.epoch}, not the {expected}",
            hint="after a switchover or failover use sw_backupRestore.ini (roles are swapped)",
        )


def check_peer_epoch(peer_raw: bytes | None, own_epoch: int) -> None:
    """Called by a primary with its peer's role.json before shipping: a peer of a newer epoch
    means this primary was failed over (or switched) and must not ship."""
    peer = parse_role(peer_raw)
    if peer.epoch > own_epoch:
        raise RoleError(
            f"the other site is at role epoch {peer.epoch} ({peer.role or 'unknown role'}), this "
            f"primary at {own_epoch}: this site is no longer the primary; nothing shipped",
            hint="run `drsync reprotect` here to become the standby of the new primary",
        )
