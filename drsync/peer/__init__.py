"""The other site: one `Peer` for every call to it, chosen here from `transport`.

`open_peer` is the one place that knows which transports exist: the rest of drsync asks the
peer (and moves bytes with `peer.data`, a `Transport`) and never branches on `transport`.
A new transport implements `Transport` (drsync/transport/base.py) and a `Peer`
(drsync/peer/base.py), and is added here.
"""

from __future__ import annotations

from drsync.config import Settings
from drsync.errors import ConfigError
from drsync.peer.base import Peer, Toward


def both_sites_here(settings: Settings) -> bool:
    """Whether both sites' directories are on this host (transport=local), so a command may act
    on the other site's files directly; otherwise only this host's side is readable here."""
    if settings.transport == "local":
        return True
    if settings.transport == "ssh":
        return False
    raise ConfigError(f"{settings.source_file}: unknown transport {settings.transport!r}")


def open_peer(settings: Settings, toward: Toward = "standby", purpose: str = "") -> Peer:
    """The other site: `toward` the standby (from the primary) or the primary (from the standby).
    `purpose` "reprotect": an old primary that comes to be reprotected (its agent lets it in for
    the reprotect calls only)."""
    if both_sites_here(settings):
        from drsync.peer.local import LocalPeer

        return LocalPeer(settings, toward)
    from drsync.peer.ssh import SshPeer  # imported on use: paramiko is slow to load

    return SshPeer(settings, toward, purpose)


__all__ = ["Peer", "Toward", "both_sites_here", "open_peer"]
