"""set-independent (the DWS tool's command): end the DR relationship on both sides.

Only after stop-backup and stop-restore, with no round or pass running (it says which side is
still going). Deletes the set history csv, the sets (bundles and manifests), the inventories,
barrier maps and DR state on both sides, and makes the standby's replicated tables writable.
The tables themselves are not touched, nor quarantines (data set aside by a role change),
`role-history/` or the audit log. One line per action, as the DWS tool prints; a second run
finds nothing to do.

This site is a `Side` (metadata, media, warehouse); the other one is the `Peer`: on this host
with transport=local, over SSH the command runs on the primary-metadata host and the other
side is checked and cleaned by its agent (op `independent`, with its own config).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from drsync.config import Settings
from drsync.errors import RoleError
from drsync.peer import both_sites_here, open_peer
from drsync.roles import audit
from drsync.roles.epoch import read_role
from drsync.roles.side import STATE_FILES, Side, primary_side, standby_side

__all__ = ["STATE_FILES", "Side", "primary_side", "run_set_independent", "standby_side"]

Say = Callable[[str], None]


def run_set_independent(settings: Settings, config: Path, *, say: Say = print) -> int:
    local = primary_side(settings)
    if not both_sites_here(settings) and not settings.primary_metadata_destination.exists():
        raise RoleError(f"set-independent over SSH runs on the primary-metadata host: "
                        f"{settings.primary_metadata_destination} does not exist here",
                        hint="run it on the host of primary-metadata-destination")
    with open_peer(settings) as other:
        # every side asked: over SSH the other's answer is its agent's check
        has = [local.has_state(), other.independent_has_state()]
        if not any(has):
            say("nothing to do: neither site holds DR state")
            return 0
        local.check_stopped()
        other.independent_check_stopped()
        metas = [settings.primary_metadata_destination, settings.restore_metadata_destination]
        epoch = max(read_role(m).epoch for m in metas)
        actions = other.independent_clean(say) + local.clean(say)  # the other side first
    say(f"set-independent done: {actions} action(s); both sites are independent and writable")
    audit.record(metas, "set-independent", config, f"done: {actions} action(s)", epoch)
    return 0
