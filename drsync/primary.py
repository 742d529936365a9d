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
import hashlib
import json
import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from drsync.bundle import (
    BundleEntry,
    BundleResult,
    bundle_suffix,
    plan_bundles,
    worth_compressing,
    write_bundle,
)
from drsync.changes import TableChange, TableInventory, collect_changes
from drsync.config import Settings
from drsync.errors import DrsyncError, StoppedError, disk_full
from drsync.faults import crash_point, wall_clock
from drsync.fsutil import atomic_write_bytes, atomic_write_json, ensure_dir, read_json, rmtree_force
from drsync.locks import operation_lock
from drsync.manifest import (
    BundleInfo,
    FailedObject,
    Manifest,
    ManifestFile,
    ManifestTable,
    load_manifest,
    next_key,
)
from drsync.progress import ProgressTracker, UiHook
from drsync.state import (
    LAST_RESTORED,
    LOCK_DIR,
    MANIFEST_DIR,
    PrimaryState,
    append_history,
    load_state,
    local_time,
    save_state,
    stop_requested,
)
from drsync.tableformat.delta import list_log
from drsync.transport import Transport, open_transport
from drsync.warehouse import TableRef, discover_tables

log = logging.getLogger("drsync.primary")


@dataclass
class RoundResult:
    key: str | None
    message: str
    tables_changed: int = 0
    bytes_shipped: int = 0
    failed: list[FailedObject] = field(default_factory=list)
    sets_shipped: int = 0

    @property
    def exit_code(self) -> int:
        return 3 if self.failed else 0


def _inventory_path(meta: Path, table: TableRef) -> Path:
    return meta / "tables" / table.db / table.schema / f"{table.table}.json"


def load_inventory(meta: Path, table: TableRef) -> TableInventory | None:
    p = _inventory_path(meta, table)
    return TableInventory.from_json(read_json(p)) if p.exists() else None


def run_backup(
    settings: Settings, ui: UiHook | None = None, transport: Transport | None = None, cut: bool = True
) -> RoundResult:
    """One backup round: ship what is pending, then cut, build and ship a new set.

    A daemon passes its long-lived `transport` so SSH connections (and the remote agents)
    stay open across rounds; without one, a transport is opened and closed for this round.
    `cut=False` only ships the sets already built: how backpressure drains."""
    meta = settings.primary_metadata_destination
    with operation_lock(meta / LOCK_DIR, "backup"):
        state: PrimaryState = load_state(meta, PrimaryState)
        if stop_requested(meta, "backup"):
            state.state = "stopped"
            save_state(meta, state)
            return RoundResult(None, "backup is stopped by stop-backup; run start-backup to resume")
        state.state = "backuping"
        tracker = ProgressTracker(state.progress, lambda: save_state(meta, state), ui)
        started = time.monotonic()
        try:
            with contextlib.ExitStack() as stack:
                if transport is None:
                    transport = stack.enter_context(open_transport(settings))
                _requeue_lost(state, transport)
                waiting = list(state.unshipped)
                for key in waiting:
                    _ship_set(settings, state, transport, key, tracker)
                if cut:
                    result = _build_set(settings, state, tracker)
                else:
                    result = RoundResult(None, f"shipped {len(waiting)} waiting set(s); no new set cut")
                result.sets_shipped = len(waiting)
                if result.key is not None:
                    result.bytes_shipped = _ship_set(settings, state, transport, result.key, tracker)
                    result.sets_shipped += 1
                    result.message += (f", {result.bytes_shipped / 1e6:.1f} MB shipped in "
                                       f"{time.monotonic() - started:.1f} s")
                if result.sets_shipped and settings.remote_config_file is not None:
                    _trigger_restore(transport)
                _forget_restored(state, transport)
        except DrsyncError as e:
            tracker.fail(e)
            state.state = "stopped" if isinstance(e, StoppedError) else "abnormal"
            save_state(meta, state)
            raise
        state.state = "waiting"
        state.success_time = local_time()
        tracker.finish()
        if result.failed:
            # A partial set: the round succeeded for the others; name the left-out tables.
            tracker.side.errorMsg = (f"{len(result.failed)} table(s) left out of set {result.key}: "
                                     + "; ".join(f"{f.name}: {f.error}" for f in result.failed))[:2000]
            tracker.side.errorCode = result.failed[0].code
            tracker.flush(force=True)
        return result


CUT_ATTEMPTS = 3  # a set whose collected files vanish before packing is cut again, this often


def _build_set(settings: Settings, state: PrimaryState, tracker: ProgressTracker,
               attempt: int = 1) -> RoundResult:
    meta, media = settings.primary_metadata_destination, settings.primary_media_destination
    warehouse = settings.primary_warehouse
    if stop_requested(meta, "backup"):
        raise StoppedError("backup stopped by stop-backup before a new set was cut")
    _remove_uncommitted(meta, media, state.last_key)
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
    changes: list[tuple[TableRef, TableChange]] = []
    failed: list[FailedObject] = []
    versions: dict[str, int] = {}
    index = _load_index(meta)
    new_index: dict[str, list[object]] = {}
    for table in discover_tables(warehouse):
        # Fast path: a log whose directory and names are what they were when the table was
        # last found idle and fully shipped costs one scandir (no stat, no inventory read).
        sig = _log_signature(table.path(warehouse))
        known = index.get(table.name)
        if sig is not None and known is not None and known[0] == sig:
            versions[table.name] = int(known[1])  # type: ignore[call-overload]
            new_index[table.name] = known
            continue
        prev = load_inventory(meta, table)
        try:
            if any("." in part for part in (table.db, table.schema, table.table)):
                raise DrsyncError(f"table directory {table.relpath}: names with '.' are not supported")
            listing = list_log(table.path(warehouse))
            change = collect_changes(table.path(warehouse), table.name, listing, barrier_ms, prev)
        except DrsyncError as e:
            log.error("table %s left out of set %s: %s", table.name, key, e.message)
            failed.append(FailedObject(name=table.name, code=e.code, error=e.message))
            if prev is not None:
                versions[table.name] = prev.version
            continue
        except Exception as e:  # one bad table never stops the others
            if isinstance(e, OSError):
                msg = f"table {table.name}: {e.strerror or e} ({e.filename})"
            else:
                msg = f"table {table.name}: cannot read its log ({type(e).__name__}: {e})"
            log.error("table %s left out of set %s: %s", table.name, key, msg)
            failed.append(FailedObject(name=table.name, code="DRS200", error=msg))
            if prev is not None:
                versions[table.name] = prev.version
            continue
        if change is None:
            assert prev is not None
            versions[table.name] = prev.version
            # Index only a table with nothing beyond what was shipped and no removed file
            # still waiting for VACUUM (those need their stat each round).
            if sig is not None and listing.latest_version == prev.version and not prev.removed:
                new_index[table.name] = [sig, prev.version]
            continue
        for w in change.warnings:
            log.warning("%s", w)
        changes.append((table, change))
        versions[table.name] = change.to_version
    crash_point("backup.collected")

    tracker.step("COMPRESS")
    set_dir = media / key
    rmtree_force(set_dir)  # leftovers of a crashed attempt at this key
    ensure_dir(set_dir)
    try:
        results = _write_bundles(settings, key, set_dir, changes, tracker)
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
        return _build_set(settings, state, tracker, attempt + 1)
    manifest = _make_manifest(settings, state, key, cut, barrier_ms, changes, results, versions, failed)
    crash_point("backup.bundled")
    atomic_write_bytes(meta / MANIFEST_DIR / f"{key}.manifest.json", manifest.to_bytes())
    crash_point("backup.manifest_written")

    # Commit point: from here the set is part of the chain.
    state.last_key, state.last_barrier_ms = key, barrier_ms
    state.unshipped.append(key)
    save_state(meta, state)
    crash_point("backup.committed")
    for table, change in changes:
        path = _inventory_path(meta, table)
        ensure_dir(path.parent)
        atomic_write_json(path, change.inventory.to_json())
        crash_point("backup.inventory_written")
    # After the inventories: an index older than them only costs a full look next round.
    atomic_write_json(meta / "tables" / INDEX_FILE, new_index)
    nbytes = manifest.data_bytes
    append_history(meta / settings.backuprestoreinfo_file, {
        "key": key, "priorKey": manifest.prior_key or "N/A", "barrierTime": manifest.barrier_utc,
        "action": "backup", "status": manifest.status, "tables": len(changes),
        "files": sum(len(t.files) for t in manifest.tables), "bytes": nbytes,
        "startTime": tracker.side.actionStartTime, "endTime": local_time(),
        "seconds": f"{time.monotonic() - tracker.started:.1f}",
        "detail": "; ".join(f.name for f in failed),
    })
    n_tables = len(set(versions) | {f.name for f in failed})
    msg = f"set {key}: {len(changes)} of {n_tables} tables changed, {nbytes / 1e6:.1f} MB collected"
    if failed:
        msg += f"; {len(failed)} table(s) failed: " + ", ".join(f.name for f in failed)
    return RoundResult(key, msg, len(changes), 0, failed)


_SET_NAME = re.compile(r"^(\d{8}_\d{6})(\.manifest\.json)?$")


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
            if f.kind not in ("data", "dv", "cdc") or (f.path in inv.files and f.path not in inv.removed):
                gone.append(f.path)
        if gone:
            try:
                newer = (list_log(table.path(warehouse)).latest_version or -1) > change.to_version
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
                m = _SET_NAME.match(entry.name)
                if m and (last_key is None or m[1] > last_key):
                    log.info("removing %s, left by a backup round that did not complete", entry)
                    if entry.is_dir():
                        rmtree_force(entry)
                    else:
                        entry.unlink()


INDEX_FILE = "index.json"


def _load_index(meta: Path) -> dict[str, list[object]]:
    try:
        raw = read_json(meta / "tables" / INDEX_FILE)
    except (FileNotFoundError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _log_signature(table_dir: Path) -> str | None:
    """Identity of a `_delta_log`: the directory's inode, mtime and ctime, and a digest of its
    entry names.

    Names, because some filesystems keep times in whole seconds; the directory's times too,
    because a table dropped and re-created reuses every name and often the freed inode."""
    log_dir = table_dir / "_delta_log"
    try:
        st = os.stat(log_dir)
        names = sorted(os.listdir(log_dir))
    except OSError:
        return None
    digest = hashlib.blake2b(chr(0).join(names).encode(), digest_size=16).hexdigest()
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_ctime_ns}:{digest}"


def _compression(settings: Settings) -> Literal["zstd", "none"]:
    if settings.compression_type == "none" or settings.compression_level == 0:
        return "none"
    return "zstd"


def _write_bundles(
    settings: Settings, key: str, set_dir: Path,
    changes: list[tuple[TableRef, TableChange]], tracker: ProgressTracker,
) -> list[BundleResult]:
    warehouse = settings.primary_warehouse
    entries = [
        BundleEntry(
            member=f"{table.relpath}/{f.path}", size=f.size, mtime_ns=f.mtime_ns,
            source=None if f.content is not None else table.path(warehouse) / f.path,
            content=f.content,
        )
        for table, change in changes for f in change.files
    ]
    # Compressing what does not shrink only burns the CPU that encryption needs (the link is
    # CPU-bound on 2 cores). Log files always shrink; data files are sampled (bench/RESULTS.md).
    chosen = _compression(settings)
    stored: list[BundleEntry] = []
    packed: list[BundleEntry] = []
    for e in entries:
        shrinks = chosen == "zstd" and (e.source is None or not e.member.endswith(".parquet")
                                        or worth_compressing(e.source))
        (packed if shrinks else stored).append(e)
    groups = [(g, "none") for g in plan_bundles(stored)] + [(g, chosen) for g in plan_bundles(packed)]
    tracker.total = sum(e.size for e in entries)
    tracker.measure = "produced"

    def one(i: int, group: list[BundleEntry], compression: Literal["zstd", "none"]) -> BundleResult:
        r = write_bundle(set_dir / f"{key}_{i:04d}{bundle_suffix(compression)}", group, compression,
                         settings.compression_level, lambda raw, out: tracker.add(raw, out))
        crash_point("backup.bundle_written")
        return r

    with ThreadPoolExecutor(max_workers=settings.parallel_process) as pool:
        return list(pool.map(lambda a: one(a[0], *a[1]), enumerate(groups)))


def _make_manifest(
    settings: Settings, state: PrimaryState, key: str, cut: datetime, barrier_ms: int,
    changes: list[tuple[TableRef, TableChange]], results: list[BundleResult],
    versions: dict[str, int], failed: list[FailedObject],
) -> Manifest:
    packed = {p.member: (p, r.path.name) for r in results for p in r.packed}
    missing = {m for r in results for m in r.missing}
    tables: list[ManifestTable] = []
    for table, change in changes:
        files: list[ManifestFile] = []
        warnings = list(change.warnings)
        for f in change.files:
            member = f"{table.relpath}/{f.path}"
            if member in missing:
                # Vanished between collect and packing (VACUUM): mirror the primary as it is.
                change.inventory.files.pop(f.path, None)
                change.expose_at_once = True
                warnings.append(f"table {table.name}: {f.path} vanished on the primary before it "
                                "was packed; mirrored as it is")
                continue
            p, bundle = packed[member]
            files.append(ManifestFile.model_validate({
                "path": f.path, "kind": f.kind, "size": p.size, "mtime_ns": f.mtime_ns,
                "version": f.version, "blake2b": p.blake2b, "bundle": bundle}))
        tables.append(ManifestTable.model_validate({
            "name": table.name, "table_id": change.table_id, "mode": change.mode,
            "from_version": change.from_version, "to_version": change.to_version, "files": files,
            "deletions": change.deletions, "ddl": change.ddl, "warnings": warnings,
            "expose_at_once": change.expose_at_once,
        }))
    return Manifest(
        key=key, prior_key=state.last_key,
        primary_cluster_id=str(settings.primary_cluster_id) if settings.primary_cluster_id else None,
        standby_cluster_id=str(settings.standby_cluster_id) if settings.standby_cluster_id else None,
        role_epoch=state.role_epoch, barrier_utc=cut.isoformat(), barrier_ms=barrier_ms,
        created_utc=datetime.now(UTC).isoformat(), status="partial" if failed else "complete",
        tables=tables, versions=versions, failed_objects=failed,
        bundles=[BundleInfo(name=r.path.name, size=r.size, blake2b=r.blake2b, compression=r.compression,
                            files=len(r.packed), raw_bytes=r.raw_bytes) for r in results],
    )


def _ship_set(
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


def _trigger_restore(transport: Transport) -> None:
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


def _requeue_lost(state: PrimaryState, transport: Transport) -> None:
    """Sets shipped but neither restored nor in the standby's inbox any more (the standby set
    a corrupt one aside, or its inbox was lost) go back to the queue to be shipped again."""
    if not state.shipped:
        return
    inbox = transport.list_dir("metadata", MANIFEST_DIR)
    _forget_restored(state, transport)
    lost = [k for k in state.shipped if f"{k}.manifest.json" not in inbox]
    if lost:
        log.warning("set(s) %s are no longer in the standby's inbox; shipping them again", ", ".join(lost))
        state.shipped = [k for k in state.shipped if k not in lost]
        state.unshipped = sorted(set(state.unshipped) | set(lost))


def _forget_restored(state: PrimaryState, transport: Transport) -> None:
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
