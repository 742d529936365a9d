"""Drills: writable forks of the standby at a retained barrier, while replication goes on.

`drill start NAME --into DIR` makes `DIR/<db>/<schema>/<table>` a writable table per
chosen replicated table, at the versions of one barrier map
(`<standby-warehouse>/_drsync/barriers/<key>.json`); one table is
forked by its format (TableFormat.fork: tableformat/delta/fork.py, tableformat/iceberg/fork.py).

Crash safety. Every drill has a record `<restore-metadata>/drills/<name>.json`, written
atomically *before* anything is built: from then on it holds its barrier map (retention
keeps it), and it names the temp directory the fork is built in, beside DIR. The fork is built
there, marked with `.drsync-drill.json` (its record's token) as the last file, flushed, and
renamed to DIR in one step; then the record says `ready`. A kill at any point leaves either no
DIR or a complete one, and the next drill command (under the `drill` lock) finishes the job:
a `building` record whose DIR carries its token is complete (marked ready), otherwise its temp
directory and record go. `drop` marks the record `dropping`, renames DIR aside, removes it and
then the record; a kill there is finished the same way. Nothing here writes to, chmods or
unlinks a replicated file: forks only hold extra hard links to them.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from drsync.config import Settings
from drsync.errors import DrillError, LockBusyError
from drsync.faults import crash_point
from drsync.fsutil import atomic_write_json, ensure_dir, fsync_dir, read_json, rmtree_force, sync_filesystem
from drsync.publications.store import load_publications
from drsync.sets.manifest import key_time
from drsync.site.drills import (
    DrillRecord,
    barrier_maps_dir,
    drills_dir,
    load_records,
)
from drsync.site.layout import BARRIER_MAP_NAME as _BARRIER_MAP
from drsync.site.layout import LOCK_DIR, is_set_key
from drsync.site.locks import operation_lock
from drsync.site.state import local_time
from drsync.site.warehouse import TableRef
from drsync.tableformat import formats, require_format
from drsync.tableformat.base import ForkedTable

MARKER = ".drsync-drill.json"  # in the fork's root: which record it belongs to
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
Say = Callable[[str], None]


def _save(settings: Settings, rec: DrillRecord) -> None:
    ensure_dir(drills_dir(settings))
    atomic_write_json(drills_dir(settings) / f"{rec.name}.json", rec.model_dump())


def _forget(settings: Settings, rec: DrillRecord) -> None:
    with contextlib.suppress(FileNotFoundError):
        (drills_dir(settings) / f"{rec.name}.json").unlink()
        fsync_dir(drills_dir(settings))


def _is_ours(path: Path, rec: DrillRecord) -> bool:
    try:
        return bool(read_json(path / MARKER).get("token") == rec.token)
    except (OSError, ValueError, AttributeError):
        return False


def recover(settings: Settings, say: Say) -> None:
    """Finish what a killed `drill start` or `drill drop` left (call under the drill lock)."""
    for rec in load_records(settings):
        into, tmp = Path(rec.into), Path(rec.tmp)
        if rec.state == "building":
            if _is_ours(into, rec):  # renamed into place, killed before the record said so
                rec.state, rec.ready_ns = "ready", time.time_ns()
                _save(settings, rec)
                say(f"drill {rec.name}: a killed start had finished; {into} is complete")
                continue
            rmtree_force(tmp)
            _forget(settings, rec)
            say(f"drill {rec.name}: removed what a killed start left ({tmp})")
        elif rec.state == "dropping":
            if _is_ours(into, rec):
                rmtree_force(into)
            rmtree_force(tmp)
            _forget(settings, rec)
            say(f"drill {rec.name}: finished a killed drop")


def barrier_keys(settings: Settings) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return sorted(m[1] for e in os.scandir(barrier_maps_dir(settings))
                      if (m := _BARRIER_MAP.match(e.name)))
    return []


def resolve_barrier(settings: Settings, at: str | None) -> str:
    """`at`: a barrier key, a time (ISO; without a zone it is local time), or None (newest)."""
    keys = barrier_keys(settings)
    hint = "barriers retained on this standby: " + (f"{keys[0]} .. {keys[-1]}" if keys else "none")
    if not keys:
        raise DrillError(f"no barrier map in {barrier_maps_dir(settings)}: the standby has not "
                         "restored any set yet", hint="run drsync restore first")
    if at is None:
        return keys[-1]
    if is_set_key(at):
        if at not in keys:
            raise DrillError(f"barrier {at} is not retained on this standby (its map was deleted "
                             "by retention, or it never existed)", hint=hint)
        return at
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise DrillError(f"--at {at!r} is neither a barrier key (YYYYMMDD_HHMMSS) nor a time "
                         "(e.g. 2026-12-06T03:00:00, local unless it has a zone)") from None
    when = when.astimezone(UTC) if when.tzinfo is None else when
    chosen = [k for k in keys if key_time(k) <= when]
    if not chosen:
        raise DrillError(f"no retained barrier at or before {at} (the oldest is {keys[0]})", hint=hint)
    return chosen[-1]


def choose_tables(settings: Settings, versions: dict[str, int], tables: list[str],
                  publication: str | None) -> dict[str, int]:
    if tables:
        unknown = [t for t in tables if t not in versions]
        if unknown:
            raise DrillError(f"table(s) not in the barrier map: {', '.join(unknown)}",
                             hint="name replicated tables as db.schema.table")
        return {t: versions[t] for t in tables}
    if publication is not None:

        pubs = load_publications(settings.restore_metadata_destination)
        pub = pubs.find(publication) if pubs else None
        if pub is None:
            raise DrillError(f"publication {publication} is unknown on this standby",
                             hint="the standby keeps the publications of the last restored set")
        chosen = {n: v for n, v in versions.items() if pub.covers(*n.split("."))}
        if not chosen:
            raise DrillError(f"publication {publication} covers no table of the barrier map")
        return chosen
    return dict(versions)


def _check_into(settings: Settings, into: Path, copy: bool) -> None:
    wh = settings.standby_warehouse.resolve()
    resolved = into.resolve()
    if resolved == wh or wh in resolved.parents:
        raise DrillError(f"--into {into} is inside the standby warehouse {wh}",
                         hint="choose a directory outside it, on the same filesystem")
    if into.exists():
        raise DrillError(f"--into {into} already exists", hint="name a new directory")
    if not into.parent.is_dir():
        raise DrillError(f"--into {into}: its parent directory does not exist")
    if not copy and into.parent.stat().st_dev != settings.standby_warehouse.stat().st_dev:
        raise DrillError(f"--into {into} is on another filesystem than the standby warehouse "
                         f"{settings.standby_warehouse}: data files cannot be hard-linked",
                         hint="choose a directory on the warehouse's filesystem, or pass --copy")


def start_drill(settings: Settings, name: str, into: Path, *, at: str | None = None,
                tables: list[str] | None = None, publication: str | None = None,
                copy: bool = False, say: Say = print) -> DrillRecord:
    if not _NAME.fullmatch(name):
        raise DrillError(f"drill name {name!r}: use letters, digits, '_', '.', '-' (up to 64)")
    into = into.absolute()
    with operation_lock(settings.restore_metadata_destination / LOCK_DIR, "drill"):
        recover(settings, say)
        if any(r.name == name for r in load_records(settings)):
            raise DrillError(f"drill {name} exists", hint=f"drsync drill drop {name}, or choose another name")
        _check_into(settings, into, copy)
        key = resolve_barrier(settings, at)
        try:
            versions: dict[str, int] = read_json(barrier_maps_dir(settings) / f"{key}.json")
        except FileNotFoundError:
            raise DrillError(f"barrier {key} was deleted by retention just now", hint="run again") from None
        chosen = choose_tables(settings, versions, tables or [], publication)
        gone = sorted(n for n in chosen if not TableRef.parse(n).path(settings.standby_warehouse).is_dir())
        if gone and tables:
            raise DrillError(f"table(s) of barrier {key} no longer on the standby (dropped, renamed or "
                             f"desynchronised since): {', '.join(gone)}", hint="leave them out of --table")
        for n in gone:
            say(f"drill {name}: table {n} of barrier {key} is no longer on the standby; left out")
            del chosen[n]
        if not chosen:
            raise DrillError(f"no table of barrier {key} is left to fork")
        token = uuid.uuid4().hex[:12]
        rec = DrillRecord(name=name, key=key, into=str(into), token=token, tables=chosen,
                          tmp=str(into.parent / f".drsync-drill-{name}.{token}.tmp"),
                          created=local_time(), copy_data=copy)
        _save(settings, rec)  # holds the barrier map from now on
        # Retention may have deleted the map between reading it and the record: keep it held.
        if not (barrier_maps_dir(settings) / f"{key}.json").exists():
            atomic_write_json(barrier_maps_dir(settings) / f"{key}.json", versions)
        crash_point("drill.recorded")
        tmp = Path(rec.tmp)
        try:
            tmp.mkdir(mode=0o755)
            forked = _build(settings, rec, tmp)
        except BaseException:
            rmtree_force(tmp)
            _forget(settings, rec)
            raise
        atomic_write_json(tmp / MARKER, {"name": name, "key": key, "token": token})
        sync_filesystem(tmp)  # one flush for every copied log file
        crash_point("drill.built")
        os.rename(tmp, into)
        fsync_dir(into.parent)
        crash_point("drill.renamed")
        rec.state, rec.ready_ns = "ready", time.time_ns()
        rec.log_bytes = sum(f.log_bytes for f in forked)
        rec.linked_bytes = sum(f.linked_bytes for f in forked)
        rec.copied_bytes = sum(f.copied_bytes for f in forked)
        _save(settings, rec)
        return rec


def _build(settings: Settings, rec: DrillRecord, tmp: Path) -> list[ForkedTable]:
    out: list[ForkedTable] = []
    for name, version in sorted(rec.tables.items()):
        ref = TableRef.parse(name)
        src = ref.path(settings.standby_warehouse)
        if not src.is_dir():
            raise DrillError(f"table {name} of barrier {rec.key} is no longer on the standby "
                             "(dropped, renamed or desynchronised since)",
                             hint="leave it out with --table, or fork a newer barrier")
        fmt = require_format(src)
        out.append(fmt.fork(src, ref.path(tmp), name, version, rec.key, copy=rec.copy_data,
                            final=ref.path(Path(rec.into))))
        crash_point("drill.table")
    return out


class DrillInfo(BaseModel):
    name: str
    key: str
    barrier: str  # the barrier's UTC time
    into: str
    state: str
    tables: int
    log_bytes: int
    linked_bytes: int
    copied_bytes: int
    written_since: int  # bytes of files created in the fork since it was made
    kept_bytes: int  # bytes only the fork still holds (their replicated copy was removed)
    keeps: str  # what it keeps the standby from deleting


def describe(rec: DrillRecord) -> DrillInfo:
    written = kept = 0
    into = Path(rec.into)
    log_dirs = {f.log_dir for f in formats()}
    for dirpath, _, names in os.walk(into):
        for n in names:
            with contextlib.suppress(FileNotFoundError):
                st = os.lstat(os.path.join(dirpath, n))
                if st.st_mtime_ns >= rec.ready_ns and st.st_nlink == 1:
                    written += st.st_size
                elif st.st_nlink == 1 and not rec.copy_data and n != MARKER \
                        and not log_dirs & set(Path(dirpath).parts):
                    kept += st.st_size  # a linked file whose replicated name VACUUM removed
    return DrillInfo(
        name=rec.name, key=rec.key, barrier=key_time(rec.key).strftime("%Y-%m-%d %H:%M:%S UTC"),
        into=rec.into, state=rec.state, tables=len(rec.tables), log_bytes=rec.log_bytes,
        linked_bytes=rec.linked_bytes, copied_bytes=rec.copied_bytes, written_since=written,
        kept_bytes=kept,
        keeps=f"barrier map {rec.key}; {kept / 1e6:.1f} MB of files the replicated tables no longer have",
    )


def list_drills(settings: Settings, say: Say = print) -> list[DrillInfo]:
    """The drills; leftovers of killed commands are finished first, unless a drill command runs
    right now (then a drill being built shows as `building`)."""
    try:
        with operation_lock(settings.restore_metadata_destination / LOCK_DIR, "drill"):
            recover(settings, say)
    except LockBusyError:
        pass
    return [describe(r) for r in load_records(settings)]


def drop_drill(settings: Settings, name: str, say: Say = print) -> str:
    with operation_lock(settings.restore_metadata_destination / LOCK_DIR, "drill"):
        recover(settings, say)
        rec = next((r for r in load_records(settings) if r.name == name), None)
        if rec is None:
            raise DrillError(f"no drill named {name}", hint="drsync drill list shows the drills")
        into, tmp = Path(rec.into), Path(rec.tmp)
        rec.state = "dropping"
        _save(settings, rec)
        if _is_ours(into, rec):
            os.rename(into, tmp)  # out of sight at once; removed below (or by recover)
            fsync_dir(into.parent)
            crash_point("drill.drop_renamed")
        elif into.exists():
            say(f"drill {name}: {into} is not this drill's fork (no matching {MARKER}); left alone")
        rmtree_force(tmp)  # only directories are opened up: linked files keep their mode
        _forget(settings, rec)
        return f"drill {name} dropped: {into} removed; barrier {rec.key} no longer held"
