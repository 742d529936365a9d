"""Role changes across SSH, the agent's side: the epoch guard on the link, and what the agent
does for a promotion, a reprotect and set-independent (served by standby/agentops.py).

The caller says its epoch at `hello`; the agent refuses a caller older than its own site, on
`hello` and on every later request of the connection. A switchover over SSH drives the
standby through its agent: `restore` (a pass now), `read` of its state and role record, and
`promote` (roles/swap.py run on the standby host with its own config, `--config`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drsync.config import Settings, load_settings
from drsync.config.envfile import load_side_env
from drsync.errors import RoleError, TransportError
from drsync.roles.epoch import read_role, refuse_older
from drsync.roles.newprimary import NewPrimary
from drsync.roles.side import Side
from drsync.roles.sites import swapped_config, swapped_name
from drsync.sets.manifest import validate_table_name
from drsync.site.layout import HISTORY_CSV

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


def agent_settings(config: Path | None, metadata_root: Path) -> Settings:
    """The agent's config for acting as the standby of `metadata_root`: its --config, or, after
    a switchover, the swapped file next to it (whose standby side is this host now)."""
    if config is None:
        raise TransportError("this agent was started without --config: it cannot restore or change "
                             "roles (set remote-config-file on the primary)")

    candidates = [config, config.with_name(swapped_name(config.name))]
    chosen: Settings | None = None
    for path in candidates:
        if path.exists():
            settings = load_settings(path)
            if settings.restore_metadata_destination.resolve() == metadata_root.resolve():
                chosen = settings
                break
    chosen = chosen or load_settings(config)
    load_side_env(chosen, "standby")  # standby-env, as every drsync command on this side
    return chosen


def agent_promote(config: Path | None, metadata_root: Path, req: dict[str, Any]) -> dict[str, Any]:
    from drsync.roles.swap import SwapPoint, promote  # imported on use: the agent starts fast

    settings = agent_settings(config, metadata_root)
    try:
        point = SwapPoint(int(req["epoch"]), str(req["key"]), int(req["barrier_ms"]),
                          {str(k): int(v) for k, v in dict(req["versions"]).items()},
                          {str(k): v for k, v in dict(req.get("table_ids") or {}).items()})
    except (KeyError, TypeError, ValueError) as e:
        raise TransportError(f"promote: bad arguments ({e})") from None
    for name in point.versions:

        validate_table_name(name)
    promote(settings, point)
    if settings.source_file is not None:
        swapped_config(Path(settings.source_file), write=True)
    return {"promoted": point.epoch}


# --- the new primary's side of a reprotect over SSH (the agent runs on the new primary) --------


def reprotect_info(config: Path | None, metadata_root: Path) -> dict[str, Any]:
    """Role record, chain head and inventoried tables of the new primary."""
    return NewPrimary(agent_settings(config, metadata_root)).info()


def table_commits(config: Path | None, metadata_root: Path, req: dict[str, Any]) -> dict[str, Any]:

    name = req.get("table")
    if not isinstance(name, str):
        raise TransportError("commits: missing table")
    validate_table_name(name)
    commits = NewPrimary(agent_settings(config, metadata_root)).commits(name)
    return {"commits": None if commits is None else {str(v): list(c) for v, c in commits.items()}}


def reprotected(config: Path | None, metadata_root: Path, req: dict[str, Any]) -> dict[str, Any]:
    from drsync.primary.changes import TableInventory  # imported on use: the agent starts fast

    rebuilt, drop = req.get("inventories") or {}, req.get("drop") or []
    if not isinstance(rebuilt, dict) or not isinstance(drop, list):
        raise TransportError("reprotected: bad arguments")
    for name in [*rebuilt, *drop]:
        validate_table_name(str(name))
    try:
        invs = {str(n): TableInventory.from_json(dict(v)) for n, v in rebuilt.items()}
    except (TypeError, ValueError) as e:
        raise TransportError(f"reprotected: bad inventory ({e})") from None
    NewPrimary(agent_settings(config, metadata_root)).finish(invs, [str(n) for n in drop])
    return {}


def agent_independent(config: Path | None, roots: dict[str, Path], req: dict[str, Any]) -> dict[str, Any]:
    """set-independent over SSH, this agent's side: `check` (refuses like the local check) or
    `clean` (returns the lines it would print)."""
    meta, warehouse = roots["metadata"], None
    if config is not None:
        settings = agent_settings(config, meta)
        warehouse = (settings.standby_warehouse if settings.restore_metadata_destination.resolve()
                     == meta.resolve() else settings.primary_warehouse)
        csv = settings.backuprestoreinfo_file
    else:
        csv = HISTORY_CSV
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
