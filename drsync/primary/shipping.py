"""Shipping built sets to the standby (SHIP step): bundles first, in parallel and resumable,
the manifest last, so a manifest in the standby's inbox means the whole set is there. Also the
bookkeeping of what the standby has restored or lost, and restore on request."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor

from drsync.config import Settings
from drsync.errors import DrsyncError
from drsync.faults import crash_point
from drsync.sets.manifest import (
    BundleInfo,
    load_manifest,
)
from drsync.site.progress import ProgressTracker
from drsync.site.state import (
    LAST_RESTORED,
    MANIFEST_DIR,
    PrimaryState,
    save_state,
)
from drsync.transport import Transport

log = logging.getLogger("drsync.primary.round")


def ship_set(
    settings: Settings, state: PrimaryState, transport: Transport, key: str, tracker: ProgressTracker,
) -> int:
    """Deliver one built set: bundles (parallel, resumable), then the manifest."""
    meta, media = settings.primary_metadata_destination, settings.primary_media_destination
    manifest = load_manifest(meta / MANIFEST_DIR / f"{key}.manifest.json")
    tracker.step("SHIP")
    tracker.total = sum(b.size for b in manifest.bundles)
    tracker.measure = "consumed"

    def send(b: BundleInfo) -> int:
        n = transport.send_file(media / key / b.name, "media", f"{key}/{b.name}", size=b.size,
                                blake2b=b.blake2b, progress=lambda k: tracker.add(consumed=k))
        crash_point("backup.bundle_shipped")
        return n

    with ThreadPoolExecutor(max_workers=settings.parallel_process) as pool:
        sent = sum(pool.map(send, manifest.bundles))
    transport.write_bytes("metadata", f"{MANIFEST_DIR}/{key}.manifest.json", manifest.to_bytes())
    crash_point("backup.manifest_shipped")
    state.unshipped.remove(key)
    state.shipped.append(key)
    save_state(meta, state)
    crash_point("backup.ship_recorded")
    return sent


def trigger_restore(transport: Transport) -> None:
    """Ask the standby's agent to restore now (remote-config-file set). Best effort: a busy or
    failing restore is the standby's to report; its own schedule runs anyway."""
    call = getattr(transport, "call_once", None)
    if call is None:
        return  # transport=local: the standby's restore runs on its own schedule
    try:
        reply = call("restore")
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
    lost = [k for k in state.shipped if f"{k}.manifest.json" not in inbox]
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
