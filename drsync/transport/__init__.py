"""How bytes reach the other site: one small interface (`Transport`), several implementations.

A `Transport` only moves bytes (send a file resumably, write, read and list small files), so
the replication logic never knows whether they go to a local directory or over SSH to a
`drsync agent`. Every other call to the other site is the `Peer`'s (drsync/peer/), which
also chooses the transport (`open_peer`).
"""

from __future__ import annotations

from drsync.transport.base import Area, Outgoing, Transport

__all__ = ["Area", "Outgoing", "Transport"]
