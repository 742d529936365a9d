"""Failover (run on the standby; the primary is lost): promote the standby at the newest
complete barrier.

The newest complete barrier is the newest barrier map the standby published: a map is written
only once every table of its set is applied. A set killed half-way left some tables at its
versions and others at the previous ones (and maybe data files of its own); each table is
brought back to the map's version by moving the log files above it, the data files only those
commits add and the data files the unfinished set installed into
`<standby-warehouse>/_drsync/failover-quarantine/<time>/` (never deleted). The standby then
becomes a primary of a new role epoch, holding inventories that describe exactly these versions,
so `reprotect` on the old primary continues incrementally. It ships nothing until then
(stop-backup intent): the old primary's inbox still holds its own sets.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from drsync.config import Settings
from drsync.errors import DrsyncError, ManifestError, RoleError
from drsync.fsutil import read_json, rmtree_force
from drsync.roles import audit
from drsync.roles.epoch import ROLE_FILE, parse_role, read_role, write_role
from drsync.roles.fence import make_writable
from drsync.roles.sites import (
    Pair,
    archive,
    stamp,
    swapped_config,
    swapped_name,
    when,
    write_inventories,
)
from drsync.roles.tablelog import SetAside, inventory_at, set_aside_above, set_aside_table
from drsync.sets.manifest import load_manifest
from drsync.site.locks import lock_holder, operation_lock
from drsync.site.state import (
    LAST_RESTORED,
    LOCK_DIR,
    MANIFEST_DIR,
    PrimaryState,
    StandbyState,
    StandbyTable,
    clear_stop,
    load_state,
    request_stop,
    save_state,
)
from drsync.site.warehouse import DRSYNC_DIR, TableRef, discover_tables
from drsync.standby.restore import barrier_dir

Say = Callable[[str], None]
_KEY = re.compile(r"^(\d{8}_\d{6})\.(?:json|manifest\.json)$")
LOG_NEW = ".drsync-log-new"


def run_failover(settings: Settings, config: Path, *, force: bool = False, say: Say = print) -> int:
    pair = Pair(settings, config)
    rec = read_role(pair.sm)
    if rec.role == "primary":
        say(f"nothing to do: {pair.sm} is already a primary (role epoch {rec.epoch})")
        return 0
    if not (pair.sm / StandbyState.FILE).exists():
        raise RoleError(f"failover: {pair.sm} holds no standby state: this is not a standby")
    new_epoch = max(rec.epoch, _old_primary_epoch(pair, force)) + 1
    swapped_config(config, write=True)  # the promoted site runs with the swapped config
    request_stop(pair.sm, "restore")
    with operation_lock(pair.sm / LOCK_DIR, "restore"):
        state: StandbyState = load_state(pair.sm, StandbyState)
        key = _newest_barrier(pair.sw, state.last_key)
        if key is None:
            raise RoleError("failover: the standby has not restored any set; there is nothing to promote")
        versions: dict[str, int] = read_json(barrier_dir(pair.sw) / f"{key}.json")
        barrier_ms = _barrier_ms(pair, state, key)
        quarantine = pair.sw / DRSYNC_DIR / "failover-quarantine" / stamp()
        unfinished = _unfinished_files(pair, key)
        rmtree_force(pair.sw / DRSYNC_DIR / "staging")  # drsync's scratch copies of set files
        results: list[SetAside] = []
        for t in discover_tables(pair.sw):
            tdir = t.path(pair.sw)
            where = quarantine / t.db / t.schema / t.table
            if (tdir / LOG_NEW).exists():
                os.makedirs(where, exist_ok=True)
                os.rename(tdir / LOG_NEW, where / LOG_NEW)
            if t.name not in versions:
                if t.name in unfinished:  # only an unfinished set carries it: not at the barrier
                    results.append(set_aside_table(tdir, t.name, where))
                continue  # a table of the standby's own, never replicated: left alone
            results.append(set_aside_above(tdir, t.name, versions[t.name], where,
                                           unfinished.get(t.name, set())))
            make_writable(tdir)
        seen = {t.name for t in discover_tables(pair.sw)}
        for name in sorted(set(unfinished) - seen - set(versions)):
            # A first apply killed before its first log file: a directory of data files only.
            tdir = TableRef.parse(name).path(pair.sw)
            if tdir.is_dir():
                ref = TableRef.parse(name)
                results.append(set_aside_table(tdir, name, quarantine / ref.db / ref.schema / ref.table))
        present = {r.table for r in results if r.to_version >= 0}
        missing = sorted(set(versions) - present)
        if missing:  # removed on the standby behind drsync's back: nothing to promote for them
            say("replicated table(s) missing on the standby, not promoted: " + ", ".join(missing))
            versions = {n: v for n, v in versions.items() if n in present}
        inventories = {n: inventory_at(TableRef.parse(n).path(pair.sw), n, v) for n, v in versions.items()}
        _set_aside_manifests(pair, key)
        point = when(barrier_ms)
        # Promote: role first (so a late restore or an old primary's set is refused), then state.
        write_role(pair.sm, "primary", new_epoch)
        for n, v in versions.items():
            state.tables[n] = StandbyTable(version=v, table_id=inventories[n].table_id, barrier_ms=barrier_ms)
        state.last_key, state.last_barrier_ms = key, barrier_ms
        state.failover_point, state.state, state.role_epoch = point, "stopped", new_epoch
        save_state(pair.sm, state)
        write_inventories(pair.sm, inventories)
        request_stop(pair.sm, "backup")  # ships nothing until the old primary is reprotected
        save_state(pair.sm, PrimaryState(last_key=key, last_barrier_ms=barrier_ms, role_epoch=new_epoch,
                                         state="stopped"))
        archive(pair.sm, [StandbyState.FILE, LAST_RESTORED], "failover-was-standby")
        write_role(pair.sm, "primary", new_epoch, failover_point=point, failover_key=key)
        clear_stop(pair.sm, "restore")  # no longer a standby: a later demotion starts clean
    aside = [r for r in results if r.files]
    for r in aside:
        say(r.describe())
    say(f"failover done at role epoch {new_epoch}: {pair.sw} is the primary; tables are writable")
    say(f"failover recovery point time: {point} (set {key}); "
        f"{len(aside)} table(s) had commits of an unfinished set set aside")
    say(f"when the old primary is back, run `drsync reprotect -c {config}` there; this site then "
        f"replicates to it (use {swapped_name(config.name)} here)")
    metas = [pair.sm, pair.pm] if settings.transport == "local" else [pair.sm]
    audit.record(metas, "failover", config, f"done: recovery point {point}", new_epoch,
                 "; ".join(r.describe() for r in aside))
    return 0


def _old_primary_epoch(pair: Pair, force: bool) -> int:
    """Refuse while the primary is reachable and replicating (unless forced); its epoch if known.

    With transport=local: its backup lock is held (a round is running now). Over SSH: its
    agent answers at all (a primary that answers is not lost)."""
    if pair.settings.transport == "local":
        holder = lock_holder(pair.pm / LOCK_DIR, "backup")
        if holder is not None and not force:
            raise RoleError(f"failover: the primary is reachable and replicating (backup round "
                            f"running, pid {holder})", hint="use switchover for a planned change, or --force")
        return read_role(pair.pm).epoch
    from drsync.transport.ssh import SshTransport

    try:
        with SshTransport(pair.settings, peer="primary") as link:
            raw = link.read_bytes("metadata", ROLE_FILE)
    except DrsyncError:
        return 0  # unreachable: lost, as the operator says; its epoch is at most ours
    if not force:
        raise RoleError(f"failover: the primary {pair.settings.primary_host_ip} is reachable (its agent "
                        "answered over SSH)", hint="use switchover for a planned change, or --force")
    return parse_role(raw).epoch


def _newest_barrier(warehouse: Path, last_key: str | None) -> str | None:
    keys: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        keys = [m[1] for e in os.scandir(barrier_dir(warehouse)) if (m := _KEY.match(e.name))]
    newest = max(keys, default=None)
    if last_key is not None and (newest is None or newest < last_key):
        return last_key if (barrier_dir(warehouse) / f"{last_key}.json").exists() else None
    return newest


def _barrier_ms(pair: Pair, state: StandbyState, key: str) -> int:
    if state.last_key == key and state.last_barrier_ms is not None:
        return state.last_barrier_ms
    try:  # the barrier map was published but the state not yet committed
        return load_manifest(pair.sm / MANIFEST_DIR / f"{key}.manifest.json").barrier_ms
    except ManifestError as e:
        raise RoleError(f"failover: barrier {key} is published but its manifest is unreadable: "
                        f"{e.message}") from None


def _unfinished_files(pair: Pair, key: str) -> dict[str, set[str]]:
    """Data files the sets after `key` carry per table: what an unfinished apply installed."""
    out: dict[str, set[str]] = {}
    with contextlib.suppress(FileNotFoundError):
        for e in os.scandir(pair.sm / MANIFEST_DIR):
            m = _KEY.match(e.name)
            if m and m[1] > key:
                with contextlib.suppress(ManifestError):
                    for t in load_manifest(Path(e.path)).tables:
                        out.setdefault(t.name, set()).update(
                            f.path for f in t.files if f.kind in ("data", "dv", "cdc"))
    return out


def _set_aside_manifests(pair: Pair, key: str) -> None:
    """Sets after the recovery point are never applied: out of the inbox, kept for the record."""
    dest = pair.sm / MANIFEST_DIR / "failover-set-aside"
    with contextlib.suppress(FileNotFoundError):
        for e in list(os.scandir(pair.sm / MANIFEST_DIR)):
            m = _KEY.match(e.name)
            if m and m[1] > key:
                os.makedirs(dest, exist_ok=True)
                os.replace(e.path, dest / e.name)
