"""The role epoch on the SSH link: the caller says its epoch at `hello`, the agent refuses a
caller older than its own site, on `hello` and on every later request of the connection.

(Role *changes* over SSH — role-status/promote/demote ops — are not implemented yet: the
role commands refuse transport=ssh with a clear message; see roles/sites.require_local.)
"""

from __future__ import annotations

from pathlib import Path

from drsync.config import Settings
from drsync.roles.epoch import read_role, refuse_older


def hello_check(agent_metadata: Path, caller_epoch: int | None) -> None:
    """Agent side. A caller that did not say its epoch (an older drsync) counts as epoch 0."""
    refuse_older(caller_epoch or 0, read_role(agent_metadata).epoch, "this agent call")


def caller_epoch(settings: Settings, peer: str) -> int:
    """Caller side: the epoch of the site this host plays towards `peer`."""
    meta = (settings.primary_metadata_destination if peer == "standby"
            else settings.restore_metadata_destination)
    return read_role(meta).epoch
