"""What a site's `drsync agent` does beyond moving bytes: the handler table the agent
(drsync/transport/agent.py, framing and dispatch only) serves, and the role-epoch guard it
applies to every request. Each handler is the other site's `SshPeer` call of the same name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from drsync.errors import TransportError
from drsync.roles.remote import (
    agent_independent,
    agent_promote,
    agent_settings,
    hello_check,
    op_allowed,
    reprotect_info,
    reprotected,
    table_commits,
)
from drsync.site.confine import safe_relpath
from drsync.site.pairing import prepare_roots
from drsync.transport.agent import Agent, Handler, Operations


def op_restore(agent: Agent, req: dict[str, Any]) -> dict[str, Any]:
    """Run one restore pass now (the primary asks right after shipping a set; a switchover
    asks with no_delay: its final sets are applied whatever restore-delay says)."""
    from drsync.standby.restore import run_restore  # imported on use: the agent starts fast

    settings = agent_settings(agent.config, agent.roots["metadata"])
    if req.get("no_delay") is True:
        settings = settings.model_copy(update={"restore_delay": timedelta(0)})
    result = run_restore(settings)
    return {"applied": result.applied, "message": result.message, "exit_code": result.exit_code}


def op_fingerprint(agent: Agent, req: dict[str, Any]) -> dict[str, Any]:
    """This side's fingerprint of one table at one version, for `drsync verify`."""
    from drsync.standby.fingerprint import fingerprint  # imported on use: the agent starts fast

    if agent.warehouse is None:
        raise TransportError("this agent was started without --warehouse-root: it cannot verify tables")
    name, version, also = req.get("table"), req.get("version"), req.get("also_hash", [])
    if not (isinstance(name, str) and name.count(".") == 2 and isinstance(version, int)
            and isinstance(also, list) and all(isinstance(a, str) for a in also)):
        raise TransportError("fingerprint: bad arguments")
    table_dir = agent.warehouse / safe_relpath(name.replace(".", "/"), table=name, where="table name")
    also = [safe_relpath(a, table=name, where="file path") for a in also]
    fp = fingerprint(table_dir, name, version, bool(req.get("deep")), also)
    return {"fingerprint": fp.model_dump(mode="json")}


def op_promote(agent: Agent, req: dict[str, Any]) -> dict[str, Any]:
    """Switchover over SSH: this standby becomes the primary (roles/swap.py)."""
    return agent_promote(agent.config, agent.roots["metadata"], req)


def op_reprotectinfo(agent: Agent, req: dict[str, Any]) -> dict[str, Any]:
    return reprotect_info(agent.config, agent.roots["metadata"])


def op_commits(agent: Agent, req: dict[str, Any]) -> dict[str, Any]:
    return table_commits(agent.config, agent.roots["metadata"], req)


def op_reprotected(agent: Agent, req: dict[str, Any]) -> dict[str, Any]:
    return reprotected(agent.config, agent.roots["metadata"], req)


def op_independent(agent: Agent, req: dict[str, Any]) -> dict[str, Any]:
    return agent_independent(agent.config, agent.roots, req)


def op_prepare(agent: Agent, req: dict[str, Any]) -> dict[str, Any]:
    """Create both roots (mode 0750) and record the cluster pair; report space and access."""
    pair = {k: req.get(k) for k in ("primary_cluster_id", "standby_cluster_id")}
    if not all(v is None or isinstance(v, str) for v in pair.values()):
        raise TransportError("prepare: cluster ids must be strings")
    return prepare_roots(agent.roots, pair, bool(req.get("check_only")))  # --check changes nothing


def op_probe(agent: Agent, req: dict[str, Any]) -> dict[str, Any]:
    """Connect from here back to the primary (strict host keys, key only) and run
    `<command> version` there: proves the standby->primary direction of the pair."""
    from drsync.peer.probe import probe_from_settings  # imported on use: paramiko is slow to load

    # Every parameter comes from this agent's own --config, never from the request: a caller
    # choosing host, key and command would use this host's keys against any host.
    return {"version": probe_from_settings(agent_settings(agent.config, agent.roots["metadata"]))}


HANDLERS: dict[str, Handler] = {
    "restore": op_restore, "fingerprint": op_fingerprint, "promote": op_promote,
    "reprotectinfo": op_reprotectinfo, "commits": op_commits, "reprotected": op_reprotected,
    "independent": op_independent, "prepare": op_prepare, "probe": op_probe,
}
SITE_OPERATIONS = Operations(handlers=HANDLERS, hello_check=hello_check, allowed=op_allowed)


def site_agent(media_root: Path, metadata_root: Path, config: Path | None = None,
               warehouse_root: Path | None = None) -> Agent:
    """The agent of this site: the data operations plus this site's handlers and epoch guard."""
    return Agent(media_root, metadata_root, config, warehouse_root, operations=SITE_OPERATIONS)
