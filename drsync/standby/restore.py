"""The restore pass on the standby: verify, apply in chain order, publish the barrier map.

Per set: every bundle is extracted into staging and every file's hash checked *before* any
table is touched (a corrupt set applies nothing). Then each table gets its files in the order
the manifest's ranks give (data; base checkpoint; commits, each created only if absent; later
log files; `_last_checkpoint`), so each version a reader can see has all its files. Then the
barrier map, then deletions, then the state commit. A crash anywhere leaves each table
readable at some version; re-running re-applies the set, which changes nothing already there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from drsync.config import Settings
from drsync.errors import (
    ChainError,
    DiskFullError,
    DrsyncError,
    IntegrityError,
    ManifestError,
    RoleError,
    StandbyConflictError,
    StoppedError,
)
from drsync.faults import crash_point, wall_clock
from drsync.fsbatch import atomic_write_many
from drsync.fsutil import (
    ensure_dir,
    fsync_dir,
    json_bytes,
    rmtree_force,
    write_advisory_json,
)
from drsync.nofollow import printable, refuse_symlink_path
from drsync.roles.epoch import assert_site_role, read_role
from drsync.sets.bundle import Expected, extract_bundle
from drsync.sets.manifest import Manifest, history_detail, load_manifest
from drsync.sets.rawfile import stage_raw
from drsync.site.layout import (
    LAST_RESTORED,
    LOCK_DIR,
    MANIFEST_DIR,
    MetadataLayout,
    WarehouseLayout,
    manifest_key,
    manifest_name,
)
from drsync.site.locks import operation_lock
from drsync.site.progress import ProgressTracker, UiHook
from drsync.site.state import (
    StandbyState,
    StandbyTable,
    append_history,
    load_state,
    local_time,
    save_state,
    stop_requested,
)
from drsync.standby.apply import check_conflicts, delete_files, install_tables, refuse_symlinked_table
from drsync.standby.barriermaps import standby_versions
from drsync.standby.delay import record_held, split_due
from drsync.standby.desync import (
    apply_desync,
    apply_renames,
    replace_table,
    replaces,
    store_publications,
    warn_desynced,
)
from drsync.standby.filehashes import applied_record
from drsync.standby.staging import Staging
from drsync.tableformat import get as get_format
from drsync.tableformat.base import event_text

log = logging.getLogger("drsync.standby.restore")
RECENT_DDL = 20  # DDL events kept in the standby state for show-progress


@dataclass
class RestoreResult:
    applied: list[str] = field(default_factory=list)
    message: str = ""
    exit_code: int = 0
    next_due_ms: int | None = None  # when restore-delay lets the oldest held-back set apply


def barrier_dir(warehouse: Path) -> Path:
    return WarehouseLayout(warehouse).barriers


def reject_manifest(meta: Path, key: str, reason: str) -> None:
    """Set a manifest aside (never delete evidence); the primary sees it gone and re-ships."""
    layout = MetadataLayout(meta)
    src, dest_dir = layout.manifest(key), layout.rejected
    ensure_dir(dest_dir)
    with contextlib.suppress(FileNotFoundError):
        os.replace(src, layout.rejected_manifest(key, int(time.time())))
        fsync_dir(src.parent)
    log.error("set %s set aside in %s: %s; the primary ships it again at its next round",
              key, dest_dir, reason)


def pending_chain(meta: Path, last_key: str | None) -> tuple[list[Manifest], ChainError | None]:
    """Manifests in the inbox after `last_key`, in chain order, up to the first gap.

    Returns the contiguous chain and, if more sets wait behind a gap, the ChainError to raise
    once the contiguous part is applied. An unreadable manifest is set aside for re-shipping.
    """
    keys: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        for e in os.scandir(meta / MANIFEST_DIR):
            key = manifest_key(e.name)
            if key is not None and (last_key is None or key > last_key):
                keys.append(key)
    chain: list[Manifest] = []
    expected_prior = last_key
    for key in sorted(keys):
        try:
            manifest = load_manifest(MetadataLayout(meta).manifest(key))
        except ManifestError as e:
            if "not valid JSON" in e.message:  # torn or truncated: ask for it again
                reject_manifest(meta, key, e.message)
            raise
        if manifest.key != key:
            raise ManifestError(f"manifest {manifest_name(key)} carries key {manifest.key}")
        if manifest.prior_key is None and expected_prior is not None:
            return chain, ChainError(
                f"set {key} starts a new chain, but the standby is at {expected_prior}: the "
                "primary's state was reset; sets of the new chain are not applied",
                hint="restore the primary's metadata directory, or start over with set-independent",
            )
        if manifest.prior_key != expected_prior:
            return chain, ChainError(
                f"set {key} builds on {manifest.prior_key or 'nothing'}, but the standby is at "
                f"{expected_prior or 'no set yet'}; set {manifest.prior_key} is missing from the inbox",
                hint="the primary re-ships sets missing from the inbox at its next round (drsync backup)",
            )
        chain.append(manifest)
        expected_prior = key
    return chain, None


def run_restore(settings: Settings, ui: UiHook | None = None,
                now: Callable[[], datetime] = wall_clock) -> RestoreResult:
    """Apply every shipped set in chain order whose barrier is at least restore-delay old
    (`now` is the clock that decides, injected by tests)."""
    meta = settings.restore_metadata_destination
    with operation_lock(meta / LOCK_DIR, "restore"):
        assert_site_role(meta, "standby", "restore")
        state: StandbyState = load_state(meta, StandbyState)
        # A run killed after its state commit but before removing its staging directory left
        # it behind, and no later run applies that set again to remove it. Under the lock,
        # every staging directory is such a leftover (apply_set re-extracts what it needs).
        with contextlib.suppress(FileNotFoundError):
            for leftover in WarehouseLayout(settings.standby_warehouse).staging.iterdir():
                rmtree_force(leftover)
        if stop_requested(meta, "restore"):
            state.state = "stopped"
            save_state(meta, state)
            return RestoreResult(message="restore is stopped by stop-restore; run start-restore to resume")
        tracker = ProgressTracker(state.progress, _progress_saver(meta, state), ui)
        result = RestoreResult()
        try:
            tracker.step("INIT")
            warn_desynced(settings, state)
            chain, gap = pending_chain(meta, state.last_key)
            chain, held = split_due(chain, settings.restore_delay, now())
            record_held(state, held)
            if held.keys:
                gap = None  # reported once the sets before it are due and applied
            for manifest in chain:
                if stop_requested(meta, "restore"):
                    state.state = "stopped"
                    result.message = f"stopped by stop-restore after {len(result.applied)} set(s)"
                    save_state(meta, state)
                    return result
                state.state = "restoring"
                apply_set(settings, state, manifest, tracker)
                result.applied.append(manifest.key)
                if manifest.failed_objects:
                    result.exit_code = 3
            if gap is not None:
                raise gap
        except DrsyncError as e:
            tracker.fail(e)
            state.state = "stopped" if isinstance(e, StoppedError) else "abnormal"
            save_state(meta, state)
            raise
        state.state = "waiting"
        if result.applied:
            state.success_time = local_time()
            last = chain[-1]
            result.message = (f"restored {len(result.applied)} set(s) up to {last.key} "
                              f"(barrier {last.barrier_utc})")
        else:
            result.message = f"nothing to restore; standby is at {state.last_key or 'no set yet'}"
        if held.keys:
            result.message += f"; {held.describe()}"
            result.next_due_ms = held.next_due_ms
        tracker.finish()
        return result


PROGRESS_EVERY_S = 1.0


def _progress_saver(meta: Path, state: StandbyState) -> Callable[[], None]:
    """The tracker's progress save, at most once a second but always at FINISH.

    A progress save rewrites and fsyncs the whole state (every table: 20-50 ms for 1,000 on a
    busy disk) and the tracker forces one at each step: five a round where a set applies in a
    fraction of a second. Steps within a second of the start or of the last save are not saved
    on their own (a pass shorter than that shows its FINISH only). Nothing is lost by that: the
    state commit (save_state, durable) is made by apply_set itself, the failure path saves
    explicitly, and FINISH (what a reader sees until the next pass) is always saved. A long
    step is saved by the tracker's own flushes while it runs."""
    last = [time.monotonic()]

    def save() -> None:
        now = time.monotonic()
        if state.progress.currentStep != "FINISH" and now - last[0] < PROGRESS_EVERY_S:
            return
        last[0] = now
        save_state(meta, state, durable=False)
    return save


def _check_pair(settings: Settings, state: StandbyState, m: Manifest) -> None:
    for label, mine, theirs in (
        ("primary-cluster-id", settings.primary_cluster_id, m.primary_cluster_id),
        ("standby-cluster-id", settings.standby_cluster_id, m.standby_cluster_id),
    ):
        if mine is not None and theirs is not None and str(mine) != theirs:
            raise ManifestError(
                f"set {m.key} is for {label} {theirs}, this standby is {mine}: refused",
                hint="check that the primary and standby configs name the same cluster pair",
            )
    own = max(state.role_epoch, read_role(settings.restore_metadata_destination).epoch)
    if m.role_epoch < own:
        reason = (f"set {m.key} comes from role epoch {m.role_epoch}, older than this site's {own}: "
                  "refused (an old primary that was failed over?)")
        reject_manifest(settings.restore_metadata_destination, m.key, reason)
        raise RoleError(reason, hint="run `drsync reprotect` on the old primary")


def apply_set(settings: Settings, state: StandbyState, m: Manifest, tracker: ProgressTracker) -> None:
    meta, media, warehouse = (settings.restore_metadata_destination,
                              settings.restore_media_destination, settings.standby_warehouse)
    started, t0 = local_time(), time.monotonic()
    tracker.side.key, tracker.side.priorKey = m.key, m.prior_key or "N/A"
    _check_pair(settings, state, m)
    versions = standby_versions(warehouse, m)  # before anything is touched (barriermaps.py)

    tracker.step("VERIFY")
    staged_at = WarehouseLayout(warehouse).staging / m.key
    refuse_symlink_path(warehouse, str(staged_at.relative_to(warehouse)), table="(staging)", what="path")
    rmtree_force(staged_at)
    staging = Staging.plan(staged_at, m)
    staging.make_dirs(m)  # staging is rebuilt by any re-run: no fsync
    tracker.total = sum(f.size for t in m.tables for f in t.files)
    tracker.measure = "consumed"
    by_bundle: dict[str, dict[str, Expected]] = {b.name: {} for b in m.bundles}
    for t in m.tables:
        for f in t.files:
            by_bundle[f.bundle][f"{t.path}/{f.path}"] = Expected(f.size, f.blake2b, staging.file(t, f.path))
    try:
        for b in m.bundles:
            path = media / m.key / b.name
            if not path.exists():
                raise IntegrityError(f"set {m.key}: bundle {b.name} is missing from {media / m.key}")
            if b.compression == "raw":  # one file as it is: linked into staging, not copied
                (exp,) = by_bundle[b.name].values()
                stage_raw(path, b.size, b.blake2b, exp.dest, settings.verify_on_restore == "full")
                crash_point("restore.raw_staged")  # linked into staging, not yet in its table
                tracker.add(produced=b.size)
            else:
                extract_bundle(path, b.compression, by_bundle[b.name], lambda n: tracker.add(produced=n),
                               fsync=False, whole=(b.size, b.blake2b), in_place=True)
            crash_point("restore.bundle_extracted")
    except DiskFullError:
        rmtree_force(staged_at)  # give the space back; the set stays pending, unchanged
        raise
    except IntegrityError as e:
        rmtree_force(staged_at)
        reject_manifest(meta, m.key, e.message)
        e.hint = "nothing was applied; the primary ships the set again at its next round"
        raise
    staging.flush(m)
    crash_point("restore.verified")

    tracker.step("APPLY")
    apply_renames(warehouse, state, m)
    # Deletions are the primary's word about files it shipped: only for tables replicated here.
    replicated = set(state.tables) | set(state.desynced)
    replaced = {t.name for t in m.tables if replaces(warehouse, state, t)}
    try:
        for t in m.tables:
            refuse_symlinked_table(warehouse, t.name)
        for t in m.tables:
            if t.name not in replaced:  # a replacement overrides whatever the standby holds
                check_conflicts(warehouse, state, t)
    except StandbyConflictError:
        rmtree_force(staged_at)
        raise
    install_tables(warehouse, staging, [t for t in m.tables if t.name not in replaced], tracker)
    for t in m.tables:
        if t.name in replaced:
            replace_table(warehouse, staging, t, tracker)
            get_format(t.format).after_install(warehouse / t.path, t.name, t.catalog)
        state.tables[t.name] = StandbyTable(version=t.to_version, table_id=t.table_id,
                                            barrier_ms=m.barrier_ms)
        state.desynced.pop(t.name, None)
    failed = {f.name for f in m.failed_objects}
    for name, version in versions.items():
        if name not in failed and name in state.tables:
            state.tables[name].version = version
            state.tables[name].barrier_ms = m.barrier_ms
    # The barrier map, and with it what continuous verification checks against (every table's
    # file-hash record, standby/filehashes.py): one batch, the waits for the disk shared, all
    # durable before any deletion and before the state commit. A record already says the
    # set's deletions are gone: a kill before they are re-runs the set, which rewrites it.
    records = dict(applied_record(meta, t, replaced=t.name in replaced, epoch=m.role_epoch,
                                  table_dir=warehouse / t.path) for t in m.tables)
    atomic_write_many({WarehouseLayout(warehouse).barrier_map(m.key): json_bytes(versions), **records})
    crash_point("restore.barrier_published")
    for t in m.tables:
        if t.name in replicated:
            delete_files(warehouse / t.path, t.deletions)
    apply_desync(settings, state, m)
    store_publications(settings, m)
    events = [f"{m.key}: {event_text(t.name, e)}" for t in m.tables for e in t.ddl]
    state.recent_ddl = (state.recent_ddl + events)[-RECENT_DDL:]
    state.last_key, state.last_barrier_ms = m.key, m.barrier_ms
    save_state(meta, state)
    # A copy of the state's last_key for cheap reading (the primary's forget_restored, the
    # daemon's inbox poll), both treating absent or unparseable as "nothing restored yet":
    # lost in a power cut it costs a restore pass that finds nothing to do and a key kept in
    # the primary's shipped list one round longer. The state, just saved, is the record.
    write_advisory_json(meta / LAST_RESTORED, {"key": m.key, "barrier_ms": m.barrier_ms})
    crash_point("restore.committed")
    rmtree_force(staged_at)
    crash_point("restore.staging_removed")
    append_history(meta / settings.backuprestoreinfo_file, {
        "key": m.key, "priorKey": m.prior_key or "N/A", "barrierTime": m.barrier_utc,
        "action": "restore", "status": m.status, "tables": len(m.tables),
        "files": sum(len(t.files) for t in m.tables), "bytes": tracker.total,
        "startTime": started, "endTime": local_time(),
        "seconds": f"{time.monotonic() - t0:.1f}",
        "detail": history_detail(m),
    })
    for t in m.tables:
        for w in t.warnings:
            log.warning("set %s: %s", m.key, printable(w))  # the primary's text: one log line
    log.info("set %s applied: %d table(s) changed, barrier %s", m.key, len(m.tables), m.barrier_utc)
