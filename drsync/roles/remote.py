"""Role changes across SSH: the epoch on the link, the standby as the switchover sees it, and
the agent's side of a promotion.

The caller says its epoch at `hello`; the agent refuses a caller older than its own site, on
`hello` and on every later request of the connection. A switchover over SSH drives the
standby through its agent: `restore` (a pass now), `read` of its state and role record, and
`promote` (roles/swap.py run on the standby host with its own config, `--config`).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

from drsync.config import Settings, load_settings
from drsync.errors import DrsyncError, LockBusyError, RoleError, TransportError
from drsync.roles.epoch import ROLE_FILE, RoleRecord, parse_role, read_role, refuse_older
from drsync.site.state import StandbyState, load_state

REPROTECT_OPS = {"reprotectinfo", "commits", "reprotected"}


def hello_check(agent_metadata: Path, caller_epoch: int | None, purpose: str = "") -> None:
    """Agent side. A caller that did not say its epoch (an older drsync) counts as epoch 0. An
    old primary that comes to be reprotected may connect, for the reprotect ops only."""
    if purpose == "reprotect":
        return
    refuse_older(caller_epoch or 0, read_role(agent_metadata).epoch, "this agent call")


def op_allowed(agent_metadata: Path, caller_epoch: int | None, purpose: str, op: str) -> None:
    if purpose == "reprotect" or op in REPROTECT_OPS:
        if purpose != "reprotect" or op not in REPROTECT_OPS:
            raise RoleError(f"agent operation {op!r} is not allowed on a "
                            f"{'reprotect' if purpose == 'reprotect' else 'replication'} connection")
        return
    hello_check(agent_metadata, caller_epoch)


def caller_epoch(settings: Settings, peer: str) -> int:
    """Caller side: the epoch of the site this host plays towards `peer`."""
    meta = (settings.primary_metadata_destination if peer == "standby"
            else settings.restore_metadata_destination)
    return read_role(meta).epoch


def agent_settings(config: Path | None, metadata_root: Path) -> Settings:
    """The agent's config for acting as the standby of `metadata_root`: its --config, or, after
    a switchover, the swapped file next to it (whose standby side is this host now)."""
    if config is None:
        raise TransportError("this agent was started without --config: it cannot restore or change "
                             "roles (set remote-config-file on the primary)")
    from drsync.roles.sites import swapped_name

    candidates = [config, config.with_name(swapped_name(config.name))]
    for path in candidates:
        if path.exists():
            settings = load_settings(path)
            if settings.restore_metadata_destination.resolve() == metadata_root.resolve():
                return settings
    return load_settings(config)


def agent_promote(config: Path | None, metadata_root: Path, req: dict[str, Any]) -> dict[str, Any]:
    from drsync.roles.sites import swapped_config
    from drsync.roles.swap import SwapPoint, promote

    settings = agent_settings(config, metadata_root)
    try:
        point = SwapPoint(int(req["epoch"]), str(req["key"]), int(req["barrier_ms"]),
                          {str(k): int(v) for k, v in dict(req["versions"]).items()},
                          {str(k): v for k, v in dict(req.get("table_ids") or {}).items()})
    except (KeyError, TypeError, ValueError) as e:
        raise TransportError(f"promote: bad arguments ({e})") from None
    for name in point.versions:
        from drsync.sets.manifest import validate_table_name

        validate_table_name(name)
    promote(settings, point)
    if settings.source_file is not None:
        swapped_config(Path(settings.source_file), write=True)
    return {"promoted": point.epoch}


class StandbyView:
    """The standby as the switchover sees it: on this host, or through its agent."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.meta = settings.restore_metadata_destination
        self.link: Any = None
        self.last_error = ""
        if settings.transport != "local":
            if settings.remote_config_file is None:
                raise TransportError(
                    "switchover over SSH needs remote-config-file: the standby's agent restores "
                    "and takes the primary role with its own config",
                    hint="set remote-config-file to backupRestore.ini's path on the standby host")
            from drsync.transport.ssh import SshTransport

            self.link = SshTransport(settings)

    def close(self) -> None:
        if self.link is not None:
            self.link.close()

    def read(self, name: str) -> bytes | None:
        if self.link is None:
            with contextlib.suppress(FileNotFoundError):
                return (self.meta / name).read_bytes()
            return None
        data: bytes | None = self.link.read_bytes("metadata", name)
        return data

    def role(self) -> RoleRecord:
        if self.link is None:
            return read_role(self.meta)
        rec = parse_role(self.read(ROLE_FILE))
        return rec if rec.role is not None else RoleRecord(None, max(rec.epoch, self.state().role_epoch))

    def state(self) -> StandbyState:
        if self.link is None:
            state: StandbyState = load_state(self.meta, StandbyState)
            return state
        raw = self.read(StandbyState.FILE)
        return StandbyState.model_validate_json(raw) if raw else StandbyState()

    def restore(self) -> None:
        """One restore pass there now; a busy one (its daemon) is waited for by the caller."""
        try:
            if self.link is None:
                from drsync.standby.restore import run_restore

                run_restore(self.settings)
            else:
                self.link.call_once("restore")
        except LockBusyError:
            pass
        except DrsyncError as e:
            self.last_error = e.message

    def promote(self, point: Any) -> None:
        assert self.link is not None
        self.link.call_once("promote", **asdict(point))


# --- the new primary's side of a reprotect over SSH (the agent runs on the new primary) --------


def reprotect_info(config: Path | None, metadata_root: Path) -> dict[str, Any]:
    """Role record, chain head and inventoried tables of the new primary."""
    from drsync.roles.reprotect import LocalPeer

    peer = LocalPeer(agent_settings(config, metadata_root))
    rec = peer.role()
    key, barrier_ms = peer.head()
    return {"role": rec.role, "epoch": rec.epoch, "key": key, "barrier_ms": barrier_ms,
            "tables": {n: list(v) for n, v in peer.inventoried().items()}}


def table_commits(config: Path | None, metadata_root: Path, req: dict[str, Any]) -> dict[str, Any]:
    from drsync.roles.reprotect import LocalPeer
    from drsync.sets.manifest import validate_table_name

    name = req.get("table")
    if not isinstance(name, str):
        raise TransportError("commits: missing table")
    validate_table_name(name)
    commits = LocalPeer(agent_settings(config, metadata_root)).commits(name)
    return {"commits": None if commits is None else {str(v): list(c) for v, c in commits.items()}}


def reprotected(config: Path | None, metadata_root: Path, req: dict[str, Any]) -> dict[str, Any]:
    from drsync.primary.changes import TableInventory
    from drsync.roles.reprotect import LocalPeer
    from drsync.sets.manifest import validate_table_name

    rebuilt, drop = req.get("inventories") or {}, req.get("drop") or []
    if not isinstance(rebuilt, dict) or not isinstance(drop, list):
        raise TransportError("reprotected: bad arguments")
    for name in [*rebuilt, *drop]:
        validate_table_name(str(name))
    try:
        invs = {str(n): TableInventory.from_json(dict(v)) for n, v in rebuilt.items()}
    except (TypeError, ValueError) as e:
        raise TransportError(f"reprotected: bad inventory ({e})") from None
    LocalPeer(agent_settings(config, metadata_root)).finish(invs, [str(n) for n in drop])
    return {}


def agent_independent(config: Path | None, roots: dict[str, Path], req: dict[str, Any]) -> dict[str, Any]:
    """set-independent over SSH, this agent's side: `check` (refuses like the local check) or
    `clean` (returns the lines it would print)."""
    from drsync.roles.independent import Side

    meta, warehouse = roots["metadata"], None
    if config is not None:
        settings = agent_settings(config, meta)
        warehouse = (settings.standby_warehouse if settings.restore_metadata_destination.resolve()
                     == meta.resolve() else settings.primary_warehouse)
        csv = settings.backuprestoreinfo_file
    else:
        csv = "backuprestoreinfo.csv"
    side = Side(meta, roots["media"], warehouse, csv)
    if req.get("phase") == "check":
        has = side.has_state()
        if has:
            side.check_stopped()
        return {"has_state": has}
    if req.get("phase") == "clean":
        side.check_stopped()
        lines: list[str] = []
        return {"actions": side.clean(lines.append), "lines": lines}
    raise TransportError("independent: phase must be check or clean")
