"""Which side of the pair this host plays: told by the state file in its metadata destination.

Used by every long-running or scheduled entry point (daemon, one-shot retention, the role
follower) before it does anything, so it sits low: it needs only the settings and the files.
"""

from __future__ import annotations

from pathlib import Path

from drsync.config import Role, Settings
from drsync.errors import ConfigError
from drsync.peer import both_sites_here
from drsync.site.state import PrimaryState, StandbyState


def detect_role(settings: Settings, asserted: str | None) -> Role:
    """The side whose state file is in its metadata destination; `asserted` may only confirm it.

    With transport=local both sites live on this host, so the files cannot tell: `--role`
    chooses which side's schedule to run (two daemons, one per role)."""
    roles: dict[str | None, Role | None] = {None: None, "primary": "primary", "standby": "standby"}
    if asserted not in roles:
        raise ConfigError(f"--role {asserted!r}: allowed: primary, standby")
    claimed = roles[asserted]
    if both_sites_here(settings):
        if claimed is None:
            raise ConfigError("transport=local keeps both sites on this host: say which one this "
                              "daemon runs", hint="pass --role primary or --role standby")
        return claimed
    files: dict[Role, Path] = {
        "primary": settings.primary_metadata_destination / PrimaryState.FILE,
        "standby": settings.restore_metadata_destination / StandbyState.FILE,
    }
    present = [role for role, path in files.items() if path.exists()]
    if len(present) == 1:
        if claimed is not None and claimed != present[0]:
            raise ConfigError(f"--role {claimed} contradicts this host's DR state: {files[present[0]]} "
                              f"says it is the {present[0]}",
                              hint="drop --role, or run the daemon on the other host")
        return present[0]
    if claimed is not None:
        return claimed
    why = ("both state files exist here" if present
           else f"neither {files['primary']} nor {files['standby']} exists yet")
    raise ConfigError(f"cannot tell which side this host is: {why}",
                      hint="pass --role primary or --role standby")
