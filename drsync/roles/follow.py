"""Which configuration a daemon runs with after a role change: it follows the DR state.

A role change swaps the sites: after a switchover (or a failover followed by reprotect) this
host's metadata directory plays the other role, and the file describing it from this side is
the swapped twin `sw_<name>` that the role command wrote next to the configuration. Like
Patroni's members, a daemon does not need an operator to restart it with the other file: at
start it picks the file whose side of its role this host plays, and a running daemon that
sees its role change under it restarts itself (`os.execv`) into that file.
"""

from __future__ import annotations

from pathlib import Path

from drsync.config import Role, Settings, load_settings
from drsync.errors import DrsyncError
from drsync.roles.epoch import JOURNAL_FILE, read_role
from drsync.roles.sites import swapped_name


def plays(settings: Settings, role: Role) -> bool:
    """Does this host still play `role` as `settings` describe it (no other role recorded)?"""
    meta = settings.metadata_dir(role)
    if (meta / JOURNAL_FILE).exists():
        return True  # a role change is under way: wait for it to finish or roll back
    return read_role(meta).role in (None, role)


def choose_config(config: Path, asserted: str | None) -> tuple[Settings, Role]:
    """The given file, or its swapped twin when only the twin's side matches the DR state.

    Falls back to the given file (whose passes then refuse with a clear hint) when neither
    matches, so a daemon never flips between the two."""
    from drsync.daemon.main import detect_role

    first_error: DrsyncError | None = None
    first: tuple[Settings, Role] | None = None
    for path in (config, config.with_name(swapped_name(config.name))):
        if path != config and not path.exists():
            continue
        try:
            settings = load_settings(path)
            role = detect_role(settings, asserted)
        except DrsyncError as e:
            if path == config:
                first_error = e
            continue
        if first is None:
            first = (settings, role)
        if plays(settings, role):
            return settings, role
    if first is not None and first_error is None:
        return first
    assert first_error is not None
    raise first_error
