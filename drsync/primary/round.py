"""The backup round on the primary: barrier, collect, bundle, ship (DESIGN §3).

Crash safety rests on one ordering: bundles and the manifest are written first, then the
state's `last_key` moves (the commit point), then the per-table inventories. A crash before
the commit point leaves an orphan set nobody refers to (deleted next round); a crash after it
but before the inventories makes the next round re-collect a few commits, which the standby
applies idempotently. Shipping delivers bundles first and the manifest last: a manifest in the
standby's inbox means the whole set is there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from drsync.config import Settings
from drsync.errors import DrsyncError, StoppedError, disk_full
from drsync.faults import crash_point, wall_clock
from drsync.fsbatch import atomic_write_many
from drsync.fsutil import (
    atomic_write_bytes,
    ensure_dir,
    json_bytes,
    read_json_object,
    rmtree_force,
    write_advisory_json,
)
from drsync.peer import Peer, open_peer
from drsync.primary.changes import TableChange
from drsync.primary.desync_guard import check_desync_guard, clear_confirmation
from drsync.primary.membership import (
    NO_PUBLICATIONS,
    clear_reseed,
    collect_table,
    inventory_path,
    load_inventory,
    move_and_forget,
    plan_round,
)
from drsync.primary.packing import make_manifest, write_bundles
from drsync.primary.roundindex import RoundIndex
from drsync.primary.roundmemory import Recalled, RoundMemory, after_round
from drsync.primary.shipping import forget_restored, requeue_lost, ship_set, trigger_restore
from drsync.publications.store import load_publications
from drsync.roles.epoch import assert_site_role, check_peer_epoch, read_role
from drsync.sets.barriers import delta_of
from drsync.sets.bundle import (
    BundleResult,
)
from drsync.sets.manifest import (
    FailedObject,
    Rename,
    history_detail,
    next_key,
)
from drsync.site.layout import (
    BARRIER_OR_MANIFEST_NAME,
    LOCK_DIR,
    MANIFEST_DIR,
    ROLE_FILE,
    SET_ENTRY_NAME,
    MetadataLayout,
    barrier_map_name,
)
from drsync.site.locks import operation_lock
from drsync.site.progress import ProgressTracker, UiHook
from drsync.site.state import PrimaryState, append_history, load_state, local_time, save_state, stop_requested
from drsync.site.warehouse import TableRef
from drsync.tableformat import get
from drsync.tableformat.base import FileRole

log = logging.getLogger("drsync.primary.round")


@dataclass
class RoundResult:
    key: str | None
    message: str
    tables_changed: int = 0
    bytes_shipped: int = 0
    failed: list[FailedObject] = field(default_factory=list)
    sets_shipped: int = 0
    note: str = ""  # e.g. "no publications: nothing is protected", shown as errorMsg

    @property
    def exit_code(self) -> int:
        return 3 if self.failed else 0


def run_backup(
    settings: Settings, ui: UiHook | None = None, peer: Peer | None = None, cut: bool = True,
    confirm_desync: bool = False, memory: RoundMemory | None = None,
) -> RoundResult:
    """One backup round: ship what is pending, then cut, build and ship a new set.

    A daemon passes its long-lived `peer` so SSH connections (and the remote agents) stay
    open across rounds; without one, the peer is opened and closed for this round.
    `cut=False` only ships the sets already built: how backpressure drains. `confirm_desync`
    lets the round desynchronise more tables than desync-guard allows (desync_guard.py).
    A daemon passes its `memory` too: what the last round ended with (roundmemory.py)."""
    meta = settings.primary_metadata_destination
    with operation_lock(meta / LOCK_DIR, "backup"):
        assert_site_role(meta, "primary", "backup")
        state: PrimaryState = load_state(meta, PrimaryState)
        if stop_requested(meta, "backup"):
            state.state = "stopped"
            save_state(meta, state)
            return RoundResult(None, "backup is stopped by stop-backup; run start-backup to resume")
        state.state = "backuping"
        # Steps saved at most twice a second: show-progress sees the step of a slow round; a
        # fast one's steps ride on its durable saves (the commit, shipping) and the finish.
        tracker = ProgressTracker(state.progress, lambda: save_state(meta, state, durable=False), ui,
                                  throttle_steps=True)
        started = time.monotonic()
        try:
            with contextlib.ExitStack() as stack:
                if peer is None:
                    peer = stack.enter_context(open_peer(settings))
                transport = peer.data
                # A peer of a newer role epoch: this site was failed over; ship nothing.
                check_peer_epoch(transport.read_bytes("metadata", ROLE_FILE),
                                 max(state.role_epoch, read_role(meta).epoch))
                requeue_lost(state, transport)
                waiting = list(state.unshipped)
                for key in waiting:
                    ship_set(settings, state, transport, key, tracker)
                if cut:
                    result = _build_set(settings, state, tracker, confirm_desync=confirm_desync,
                                        memory=memory)
                else:
                    result = RoundResult(None, f"shipped {len(waiting)} waiting set(s); no new set cut")
                result.sets_shipped = len(waiting)
                if result.key is not None:
                    result.bytes_shipped = ship_set(settings, state, transport, result.key, tracker)
                    result.sets_shipped += 1
                    result.message += (f", {result.bytes_shipped / 1e6:.1f} MB shipped in "
                                       f"{time.monotonic() - started:.1f} s")
                if result.sets_shipped and settings.remote_config_file is not None:
                    trigger_restore(peer)
                forget_restored(state, transport)
        except DrsyncError as e:
            tracker.fail(e)
            state.state = "stopped" if isinstance(e, StoppedError) else "abnormal"
            save_state(meta, state)
            raise
        state.state = "waiting"
        state.success_time = local_time()
        tracker.finish()
        if result.note and not result.failed:
            tracker.side.errorMsg = result.note
            tracker.flush(force=True)
        if result.failed:
            # A partial set: the round succeeded for the others; name the left-out tables.
            tracker.side.errorMsg = (f"{len(result.failed)} table(s) left out of set {result.key}: "
                                     + "; ".join(f"{f.name}: {f.error}" for f in result.failed))[:2000]
            tracker.side.errorCode = result.failed[0].code
            tracker.flush(force=True)
        return result


CUT_ATTEMPTS = 3  # a set whose collected files vanish before packing is cut again, this often


def _build_set(settings: Settings, state: PrimaryState, tracker: ProgressTracker,
               attempt: int = 1, confirm_desync: bool = False,
               memory: RoundMemory | None = None) -> RoundResult:
    meta, media = settings.primary_metadata_destination, settings.primary_media_destination
    warehouse = settings.primary_warehouse
    if stop_requested(meta, "backup"):
        raise StoppedError("backup stopped by stop-backup before a new set was cut")
    _remove_uncommitted(meta, media, state.last_key)
    if load_publications(meta) is None:
        log.warning("%s", NO_PUBLICATIONS)
        return RoundResult(None, NO_PUBLICATIONS, note=NO_PUBLICATIONS)
    tracker.step("BARRIER")
    barrier_ms = int(wall_clock().timestamp() * 1000)
    if state.last_barrier_ms is not None and barrier_ms <= state.last_barrier_ms:
        # The clock stepped back (NTP, a VM restore): barriers never go back, or the standby's
        # barrier time, lag and RPO would move backwards with it.
        barrier_ms = state.last_barrier_ms + 1
    cut = datetime.fromtimestamp(barrier_ms / 1000, UTC)
    time.sleep(settings.barrier_grace.total_seconds())  # let commits in flight land
    key = next_key(cut, state.last_key)
    tracker.side.key, tracker.side.priorKey = key, state.last_key or "N/A"

    tracker.step("COLLECT")
    recalled = memory.recall(meta, state.last_key) if memory is not None else None
    plan = plan_round(meta, warehouse, settings.publication_list, settings.warehouse_layout,
                      recalled.inventoried if recalled is not None else None)
    changes: list[tuple[TableRef, TableChange]] = []
    failed: list[FailedObject] = []
    versions: dict[str, int] = {}
    renames: list[Rename] = []
    index = RoundIndex(recalled.index) if recalled is not None else RoundIndex.load(meta)
    inventories = recalled.inventories if recalled is not None else {}
    for table in plan.tables:
        reseed = plan.wants_reseed(table.name)
        # Fast path (roundindex.py): a log whose signature is what it was when the table was
        # last found idle and fully shipped costs one listing (no inventory read, no parse).
        sig = plan.signatures.get(table.name)
        known = None if reseed else index.unchanged(table.name, sig)
        if known is not None:
            versions[table.name] = known
            continue
        prev = inventories.get(table.name) or load_inventory(meta, table)
        if prev is not None:
            inventories[table.name] = prev  # as on disk; replaced after the commit if it changed
        try:
            got = collect_table(warehouse, table, barrier_ms, prev, plan, reseed)
        except DrsyncError as e:  # one bad table never stops the others
            log.error("table %s left out of set %s: %s", table.name, key, e.message)
            failed.append(FailedObject(name=table.name, code=e.code, error=e.message))
            if prev is not None:
                versions[table.name] = prev.version
            continue
        change, listing, moved_from, prev = got
        if moved_from is not None:
            renames.append(Rename(from_name=moved_from.name, to_name=table.name))
        if change is None:
            assert prev is not None
            versions[table.name] = prev.version
            # Index only a table with nothing beyond what was shipped and no removed file
            # still waiting for VACUUM (those need their stat each round).
            if sig is not None and listing.latest_version == prev.version and not prev.removed:
                index.record(table.name, sig, prev.version)
            continue
        for w in change.warnings:
            log.warning("%s", w)
        changes.append((table, change))
        versions[table.name] = change.to_version
    crash_point("backup.collected")
    check_desync_guard(meta, settings.desync_guard, len(plan.inventoried), plan.desync, confirm_desync,
                       settings.source_file)

    tracker.step("COMPRESS")
    set_dir = media / key
    rmtree_force(set_dir)  # leftovers of a crashed attempt at this key
    ensure_dir(set_dir)
    try:
        results = write_bundles(settings, key, set_dir, changes, tracker)
    except OSError as e:
        rmtree_force(set_dir)  # give the space back: the set was not committed
        raise (disk_full(e, f"the bundles of set {key} in {media}")
               or DrsyncError(f"cannot write the bundles of set {key} in {media}: {e.strerror or e} "
                              f"({e.filename})")) from None
    vanished = _vanished_needed(changes, results, warehouse)
    if vanished:
        rmtree_force(set_dir)
        if attempt == CUT_ATTEMPTS:
            raise DrsyncError(
                f"set {key}: {vanished} vanished on the primary between collect and packing "
                f"{CUT_ATTEMPTS} times in a row (VACUUM during the round?); nothing was committed",
                hint="the next round tries again; avoid VACUUM with a retention shorter than a round")
        log.warning("set %s: %s vanished between collect and packing (VACUUM?); cutting the set "
                    "again (%d of %d)", key, vanished, attempt, CUT_ATTEMPTS - 1)
        return _build_set(settings, state, tracker, attempt + 1, confirm_desync, memory)
    manifest = make_manifest(settings, state, key, cut, barrier_ms, changes, results, versions, failed)
    manifest.desync, manifest.renames = plan.desync, renames
    if plan.publications is not None:
        manifest.publications = plan.publications.model_dump()
    base = _base_versions(meta, state.last_key, recalled)
    if base is not None:  # only what moved since the prior set travels (sets/barriers.py)
        manifest.versions, manifest.versions_dropped = delta_of(versions, base)
        manifest.versions_base = state.last_key
    crash_point("backup.bundled")
    # The whole map first: a set's map file is there whenever its manifest is (a crash between
    # them leaves a map of an uncommitted key, overwritten or pruned by a later round).
    # No fsync: a map lost to a power cut is rebuilt from the (durable) manifests.
    ensure_dir(MetadataLayout(meta).barriers)
    write_advisory_json(MetadataLayout(meta).barrier_map(key), versions)
    atomic_write_bytes(MetadataLayout(meta).manifest(key), manifest.to_bytes())
    crash_point("backup.manifest_written")

    # Commit point: from here the set is part of the chain.
    state.last_key, state.last_barrier_ms = key, barrier_ms
    state.unshipped.append(key)
    save_state(meta, state)
    crash_point("backup.committed")
    move_and_forget(meta, renames, plan.desync)
    clear_confirmation(meta)
    # Each file made durable before its rename, the fsyncs issued at once so that they share
    # journal commits (fsbatch.atomic_write_many): a power cut keeps each inventory or the one
    # before it, both whole, and the one before only makes the next round collect these
    # commits again, which the standby applies idempotently (the module docstring's argument).
    atomic_write_many({inventory_path(meta, table): json_bytes(change.inventory.to_json())
                       for table, change in changes},
                      lambda _: crash_point("backup.inventory_written"))
    # After the inventories: an index older than them only costs a full look next round.
    # No fsync: an index lost or emptied by a power cut costs one full look next round.
    index.save(meta)
    crash_point("backup.index_written")
    _prune_barrier_maps(meta, key)
    if memory is not None:
        memory.keep(meta, key, after_round(plan.inventoried, inventories, changes, renames,
                                           plan.desync, index, versions))
    if plan.reseed_all or plan.reseed:
        clear_reseed(meta, plan.reseed_all, {t.name for t, c in changes if c.replace} | plan.reseed)
    nbytes = manifest.data_bytes
    append_history(meta / settings.backuprestoreinfo_file, {
        "key": key, "priorKey": manifest.prior_key or "N/A", "barrierTime": manifest.barrier_utc,
        "action": "backup", "status": manifest.status, "tables": len(changes),
        "files": sum(len(t.files) for t in manifest.tables), "bytes": nbytes,
        "startTime": tracker.side.actionStartTime, "endTime": local_time(),
        "seconds": f"{time.monotonic() - tracker.started:.1f}",
        "detail": history_detail(manifest),
    })
    n_tables = len(set(versions) | {f.name for f in failed})
    msg = f"set {key}: {len(changes)} of {n_tables} tables changed, {nbytes / 1e6:.1f} MB collected"
    if failed:
        msg += f"; {len(failed)} table(s) failed: " + ", ".join(f.name for f in failed)
    if plan.desync:
        msg += f"; {len(plan.desync)} table(s) desynchronised: " + ", ".join(d.name for d in plan.desync)
    if renames:
        msg += "; moved: " + ", ".join(f"{r.from_name} -> {r.to_name}" for r in renames)
    if plan.message:
        msg += f"; {plan.message}"
    return RoundResult(key, msg, len(changes), 0, failed, note=plan.message)


def _vanished_needed(changes: list[tuple[TableRef, TableChange]], results: list[BundleResult],
                     warehouse: Path) -> str:
    """The first file a collected version needs that was gone at collect or when the bundles
    were packed, as "table/path", or "" — only for a table that has a newer version by now (a
    concurrent OPTIMIZE + VACUUM): shipping the collected version would leave the standby's
    table unreadable at it, and a set cut again includes the newer one. A file its table's
    newest version still needs is damage on the primary: mirrored as it is (DESIGN §5)."""
    missing = {m for r in results for m in r.missing}
    for table, change in changes:
        inv = change.inventory
        gone = list(change.missing_needed)
        for f in change.files:
            if f"{table.relpath}/{f.path}" not in missing:
                continue
            is_data = get(change.format).role(f.kind) is FileRole.DATA
            if not is_data or (f.path in inv.files and f.path not in inv.removed):
                gone.append(f.path)
        if gone:
            try:
                tdir = table.path(warehouse)
                newer = (get(change.format).read_log(tdir).latest_version or -1) > change.to_version
            except DrsyncError:
                newer = False
            if newer:
                return f"{table.name}/{gone[0]}"
    return ""


def _remove_uncommitted(meta: Path, media: Path, last_key: str | None) -> None:
    """Delete what rounds killed before their commit point built: a set directory in the media
    and/or a manifest whose key is after the chain head `last_key`. Nothing refers to them
    (sets are shipped from `unshipped`, all at or before `last_key`), and without this they
    were never removed unless a later round happened to reuse the same key (same second)."""
    for folder in (media, meta / MANIFEST_DIR):
        with contextlib.suppress(FileNotFoundError):
            for entry in folder.iterdir():
                m = SET_ENTRY_NAME.match(entry.name)
                if m and (last_key is None or m[1] > last_key):
                    log.info("removing %s, left by a backup round that did not complete", entry)
                    if entry.is_dir():
                        rmtree_force(entry)
                    else:
                        entry.unlink()


def _base_versions(meta: Path, last_key: str | None, recalled: Recalled | None) -> dict[str, int] | None:
    """The whole barrier map of the prior set when this primary built it and still has its
    map file, else None: the new set then carries its whole map. Only then: the standby has
    that map as its newest barrier map exactly when it restored that set, which a set this
    primary built and shipped was (a daemon keeps it in memory: `recalled`); after a role
    change the prior set was built by the other site (the standby never restored it), and a
    map lost to a power cut is not rebuilt here."""
    if last_key is None:
        return None
    if recalled is not None:  # the map this process wrote, if the file is still there
        return recalled.barrier_map if MetadataLayout(meta).barrier_map(last_key).exists() else None
    stored = read_json_object(MetadataLayout(meta).barrier_map(last_key))
    if stored is None:
        return None
    try:
        return {str(n): int(v) for n, v in stored.items()}
    except (TypeError, ValueError):
        return None


def _prune_barrier_maps(meta: Path, keep: str) -> None:
    """Only the newest set's whole map is needed (the next set builds on it); the older ones
    can be rebuilt from the manifests if ever asked for (sets/barriers.set_versions)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(MetadataLayout(meta).barriers):
            if entry.name != barrier_map_name(keep) and BARRIER_OR_MANIFEST_NAME.match(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
