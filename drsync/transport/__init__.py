"""How sets reach the standby: one small interface (`Transport`), several implementations.

The replication logic only ever calls these methods, Litestream-style, so it never knows
whether bytes go to a local directory or over SSH to a `drsync agent`.
"""

from __future__ import annotations

from drsync.config import Settings
from drsync.errors import ConfigError
from drsync.transport.base import Area, Transport


def open_transport(settings: Settings) -> Transport:
    if settings.transport == "local":
        from drsync.transport.local import LocalTransport

        return LocalTransport(settings.restore_media_destination, settings.restore_metadata_destination)
    if settings.transport == "ssh":
        from drsync.transport.ssh import SshTransport

        return SshTransport(settings)
    raise ConfigError(f"{settings.source_file}: unknown transport {settings.transport!r}")


__all__ = ["Area", "Transport", "open_transport"]
