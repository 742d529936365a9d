"""Shipping built sets to the standby (SHIP step): bundles first, in parallel and resumable,
the manifest last, so a manifest in the standby's inbox means the whole set is there. Also the
bookkeeping of what the standby has restored or lost, and restore on request."""

from __future__ import annotations

import json
import logging

from drsync.config import Settings
from drsync.errors import DrsyncError
from drsync.faults import crash_point
from drsync.peer import Peer
from drsync.sets.manifest import load_manifest
from drsync.site.layout import (
    LAST_RESTORED,
    MANIFEST_DIR,
    MetadataLayout,
    bundle_rel,
    manifest_name,
    manifest_rel,
)
from drsync.site.progress import ProgressTracker
from drsync.site.state import PrimaryState, save_state
from drsync.transport import Outgoing, Transport

log = logging.getLogger("drsync.primary.round")


def ship_set(
    settings: Settings, state: PrimaryState, transport: Transport, key: str, tracker: ProgressTracker,
) -> int:
    """Deliver one built set: bundles (parallel, resumable), then the manifest."""
    meta, media = settings.primary_metadata_destination, settings.primary_media_destination
    manifest = load_manifest(MetadataLayout(meta).manifest(key))
    tracker.step("SHIP")
    tracker.total = sum(b.size for b in manifest.bundles)
    tracker.measure = "consumed"

    files = [Outgoing(media / key / b.name, bundle_rel(key, b.name), b.size, b.blake2b)
             for b in manifest.bundles]
    # Several files in flight per link, acknowledged later (transport/window.py over SSH).
    sent = transport.send_files("media", files, workers=settings.workers,
                                progress=lambda k: tracker.add(consumed=k),
                                done=lambda f: crash_point("backup.bundle_shipped"))
    transport.write_bytes("metadata", manifest_rel(key), manifest.to_bytes())
    crash_point("backup.manifest_shipped")
    state.unshipped.remove(key)
    state.shipped.append(key)
    save_state(meta, state)
    crash_point("backup.ship_recorded")
    return sent


def trigger_restore(peer: Peer) -> None:
    """Ask the standby to restore now (remote-config-file set). Best effort: a busy or failing
    restore is the standby's to report; its own schedule runs anyway."""
    try:
        reply = peer.request_restore()
        if reply is None:
            return  # the standby's restore runs on its own schedule (transport=local)
        log.info("standby restore on request: %s", reply.get("message", ""))
    except DrsyncError as e:
        log.warning("standby restore on request did not run: %s", e.message)


def requeue_lost(state: PrimaryState, transport: Transport) -> None:
    """Sets shipped but neither restored nor in the standby's inbox any more (the standby set
    a corrupt one aside, or its inbox was lost) go back to the queue to be shipped again."""
    if not state.shipped:
        return
    inbox = transport.list_dir("metadata", MANIFEST_DIR)
    forget_restored(state, transport)
    lost = [k for k in state.shipped if manifest_name(k) not in inbox]
    if lost:
        log.warning("set(s) %s are no longer in the standby's inbox; shipping them again", ", ".join(lost))
        state.shipped = [k for k in state.shipped if k not in lost]
        state.unshipped = sorted(set(state.unshipped) | set(lost))


def forget_restored(state: PrimaryState, transport: Transport) -> None:
    """Drop keys the standby has restored from `shipped` (they feed unrestoreKeys).

    Reads the standby's tiny last-restored file, not its whole state (which lists every
    table and would cross the link twice a round)."""
    raw = transport.read_bytes("metadata", LAST_RESTORED)
    if raw is None:
        return
    try:
        last = json.loads(raw).get("key")
    except (ValueError, AttributeError):
        return
    if isinstance(last, str):
        state.shipped = [k for k in state.shipped if k > last]
