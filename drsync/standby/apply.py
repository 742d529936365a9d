"""Installing one table's files on the standby, so that every version a reader can see has
all its files (DESIGN §3; docs/architecture.md "Crash safety, standby side").

`check_conflicts` refuses a table changed behind drsync's back; `apply_table` installs files in
`manifest.apply_order` (the table format's install order), exposing a new log at once where
one-by-one would show a version the primary itself lost; `delete_files` removes what the
primary removed, after the set.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

from drsync.errors import StandbyConflictError
from drsync.faults import crash_point
from drsync.fsbatch import shared_pool
from drsync.fsutil import (
    RO_DIR,
    RO_FILE,
    RW_DIR,
    ensure_dir,
    exchange_paths,
    fsync_dir,
    link_tree,
    make_writable_dir,
    rmtree_force,
)
from drsync.nofollow import symlink_on_path
from drsync.sets.digest import file_hash, file_matches
from drsync.sets.manifest import ManifestTable, apply_order
from drsync.site.progress import ProgressTracker
from drsync.site.state import StandbyState
from drsync.standby.staging import Staging, staging_of
from drsync.tableformat import get as get_format
from drsync.tableformat.base import FileRole

log = logging.getLogger("drsync.standby.apply")
LOG_NEW = ".drsync-log-new"  # where a new log is built before it is made visible at once


def refuse_symlinked_table(warehouse: Path, name: str) -> None:
    """A table path with a symlink on the way (db, schema or table directory) would make the
    standby write, chmod and delete wherever it points: refused, never followed."""
    link = symlink_on_path(warehouse, name.replace(".", "/"))
    if link is not None:
        raise StandbyConflictError(
            f"table {name}: {warehouse / link} on the standby is a symlink; drsync never writes "
            "through one", hint=f"replace {warehouse / link} by a real directory, then run restore again")


def check_conflicts(warehouse: Path, state: StandbyState, t: ManifestTable) -> None:
    """Refuse to touch a table that was changed on the standby behind drsync's back."""
    tdir = warehouse / t.path
    known = state.tables.get(t.name)
    fmt = get_format(t.format)
    if not tdir.exists():
        if known is not None:
            raise StandbyConflictError(
                f"table {t.name}: replicated table directory {tdir} was removed on the standby",
                hint="reseed the table, or cancel its publication",
            )
        return
    if not fmt.is_table(tdir):
        # A first apply killed before its first log file left the directory with some of this
        # set's data files and no log; refusing that made every later run fail, so the
        # restore never converged. Such a leftover holds only files of this set, as they are.
        if known is None and _holds_only_files_of(tdir, t):
            return
        raise StandbyConflictError(f"table {t.name}: {tdir} exists on the standby but is not a "
                                   f"{fmt.title} table; drsync will not overwrite it")
    change = fmt.local_change(tdir, known.version if known is not None else None, t.files)
    if change is not None:
        raise StandbyConflictError(
            f"table {t.name}: changed on the standby behind drsync's back: {change}; refusing "
            "to overwrite it", hint="move the local change aside, then reseed the table from the primary")
    ours = {f.version: f.blake2b for f in t.files if fmt.role(f.kind) is FileRole.COMMIT}
    for v, commit_file in sorted(fmt.commits(tdir).items()):
        if known is not None and v <= known.version:
            continue
        if v not in ours or file_hash(tdir / commit_file, like=ours[v]) != ours[v]:
            raise StandbyConflictError(
                f"table {t.name}: commit {v} on the standby was not written by drsync (the table "
                "was changed locally); refusing to overwrite it",
                hint="move the local change aside, then reseed the table from the primary",
            )


def _holds_only_files_of(tdir: Path, t: ManifestTable) -> bool:
    """True if every file under `tdir` is one the set carries for `t`, same size and hash.

    `.drsync-log-new` is skipped: it is drsync's own scratch (a log being built when a run was
    killed), never visible to readers, and discarded by `apply_table` before anything else."""
    carried = {f.path: f for f in t.files}
    for dirpath, dirnames, names in os.walk(tdir):
        if Path(dirpath) == tdir and LOG_NEW in dirnames:
            dirnames.remove(LOG_NEW)
        for name in names:
            p = Path(dirpath, name)
            f = carried.get(p.relative_to(tdir).as_posix())
            st = p.lstat()
            if (f is None or not stat.S_ISREG(st.st_mode) or st.st_size != f.size
                    or not file_matches(p, f.blake2b)):
                return False
    return True


def apply_table(
    warehouse: Path, staging: Path | Staging, t: ManifestTable, tracker: ProgressTracker,
    tdir: Path | None = None
) -> None:
    """Install one table's files in apply order.

    Log files normally go straight into the log directory, one by one, each version readable as it
    appears. Two cases build the new log aside in `.drsync-log-new` and make it visible in one
    step instead: a table's first copy (renamed in: the table appears at its barrier version)
    and a set flagged `expose_at_once` (some version in the range is unreadable even on the
    primary; the new log is swapped with the old one by `renameat2(RENAME_EXCHANGE)`).
    `tdir` builds the table elsewhere (a replacement, see desync.replace_table)."""
    tdir = tdir or warehouse / t.path
    fmt = get_format(t.format)
    staged = staging_of(staging)
    ensure_dir(tdir.parent)
    if not tdir.exists():
        tdir.mkdir(mode=RW_DIR)
        fsync_dir(tdir.parent)
    touched: set[Path] = {tdir}
    make_writable_dir(tdir)
    log_dir, shadow = tdir / fmt.log_dir, tdir / LOG_NEW
    log_prefix = f"{fmt.log_dir}/"
    if shadow.exists():
        rmtree_force(shadow)  # left by a kill, before or after a swap: never the live log
    has_log_files = any(f.path.startswith(log_prefix) for f in t.files)
    mode = "direct"
    if has_log_files and not log_dir.exists():
        mode = "rename"
        shadow.mkdir(mode=RW_DIR)
    elif has_log_files and t.expose_at_once:
        mode = "exchange"
        link_tree(log_dir, shadow)
    # Directory fsyncs are batched where order does not matter: data files (all of them
    # before any commit that names them), and a log built aside (before it becomes visible).
    # A commit linked into the live log is fsynced at once: a later commit must never survive
    # a power cut without the earlier ones.
    unsynced: set[Path] = set()
    if fmt.rewrites_on_install:  # e.g. Iceberg: the primary's table location -> ours
        fmt.rewrite_on_install(staged.table_root(t), t.files, warehouse / t.path, tdir, t.name)
    for f in apply_order(t):
        final = tdir / f.path
        in_log = f.path.startswith(log_prefix)
        if mode != "direct" and in_log:
            final = shadow / f.path[len(log_prefix):]
        elif in_log and unsynced:
            _fsync_dirs(unsynced)
        _open_dirs(tdir, final.parent, touched)
        src = staged.file(t, f.path)
        os.utime(src, ns=(f.mtime_ns, f.mtime_ns))
        os.chmod(src, RO_FILE)
        if fmt.role(f.kind) is FileRole.COMMIT:
            try:
                os.link(src, final)  # create-if-absent: never overwrite a commit
            except FileExistsError:
                if file_hash(final, like=f.blake2b) != f.blake2b:
                    raise StandbyConflictError(
                        f"table {t.name}: commit {f.version} exists on the standby with other "
                        "content; refusing to overwrite it") from None
            os.unlink(src)
        else:
            os.replace(src, final)
        if mode == "direct" and in_log:
            fsync_dir(final.parent)
        else:
            unsynced.add(final.parent)
        tracker.add(consumed=f.size)
        crash_point("apply.file")
    _fsync_dirs(unsynced)
    if mode != "direct":
        _expose_log(tdir, shadow, log_dir, mode, touched)
    for d in touched:
        os.chmod(d, RO_DIR)
    crash_point("apply.table")


def install_table(warehouse: Path, staging: Staging, t: ManifestTable, tracker: ProgressTracker) -> None:
    """`apply_table`, then the format's after-install step (a catalog row follows the pointer)."""
    apply_table(warehouse, staging, t, tracker)
    get_format(t.format).after_install(warehouse / t.path, t.name, t.catalog)


def install_tables(warehouse: Path, staging: Staging, tables: list[ManifestTable],
                   tracker: ProgressTracker) -> None:
    """`apply_table` for each table, several at a time. Tables are independent: every order
    apply_table keeps (data before the commits naming them, commit v durable before v+1) is
    within one table, so tables can install side by side, and their directory fsyncs, issued
    at the same time, share the journal's commits instead of waiting one after the other (two
    fsyncs a table: 10 tables cost about what 2 fsyncs do). Formats that rewrite files on
    install (Iceberg) go one at a time, as before. The first error is raised once the tables
    already started are done (as after a kill, each is at some readable version); tables not
    started yet are not touched. Each table's `after_install` (the standby catalog's row of an
    Iceberg table: its commit point) follows its own install at once."""
    concurrent: list[ManifestTable] = []
    for t in tables:
        if get_format(t.format).rewrites_on_install:
            install_table(warehouse, staging, t, tracker)
        else:
            concurrent.append(t)
    if len(concurrent) <= 1:
        for t in concurrent:
            install_table(warehouse, staging, t, tracker)
        return
    pool = shared_pool("install")  # its tasks never wait on this pool's (fsyncs are direct)
    futures = [pool.submit(install_table, warehouse, staging, t, tracker) for t in concurrent]
    try:
        for f in futures:
            f.result()
    except BaseException:
        for f in futures:
            f.cancel()
        for f in futures:  # the tables already started finish before the error is raised
            if not f.cancelled():
                with contextlib.suppress(BaseException):
                    f.result()
        raise


def _fsync_dirs(dirs: set[Path]) -> None:
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):  # deepest first
        fsync_dir(d)
    dirs.clear()


def _expose_log(tdir: Path, shadow: Path, log_dir: Path, mode: str, touched: set[Path]) -> None:
    """Make the log built in `shadow` the table's log directory in one atomic step."""
    for d in [p for p in touched if p == shadow or shadow in p.parents]:
        os.chmod(d, RO_DIR)
        touched.discard(d)
    os.chmod(shadow, RO_DIR)
    crash_point("apply.log_built")
    if mode == "rename":
        os.rename(shadow, log_dir)
        fsync_dir(tdir)
        return
    try:
        exchange_paths(shadow, log_dir)
    except OSError as e:
        # No RENAME_EXCHANGE here (e.g. NFS): link the new files in one by one, in order, as
        # for any other set. Versions stay readable except those the primary lost as well.
        log.warning("%s: cannot swap the log atomically (%s); installing it file by file", tdir, e)
        _link_missing(shadow, log_dir)
        rmtree_force(shadow)
        return
    fsync_dir(tdir)
    crash_point("apply.log_swapped")
    rmtree_force(shadow)  # the old log, now under the shadow name


def _link_missing(src: Path, dest: Path) -> None:
    make_writable_dir(dest)
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        target = dest / entry.name
        if entry.is_dir(follow_symlinks=False):
            if not target.exists():
                target.mkdir(mode=RW_DIR)
            _link_missing(Path(entry.path), target)
        elif not target.exists():
            os.link(entry.path, target)
    fsync_dir(dest)
    os.chmod(dest, RO_DIR)


def _open_dirs(tdir: Path, parent: Path, touched: set[Path]) -> None:
    """Create/open for writing every directory from the table root down to `parent`."""
    chain = []
    p = parent
    while p != tdir and p not in touched:
        chain.append(p)
        p = p.parent
    for d in reversed(chain):
        if not d.exists():
            d.mkdir(mode=RW_DIR)
            fsync_dir(d.parent)
        else:
            make_writable_dir(d)
        touched.add(d)


def delete_files(tdir: Path, paths: list[str]) -> None:
    touched: set[Path] = set()
    for rel in paths:
        p = tdir / rel
        if "/" in rel and symlink_on_path(tdir, rel.rsplit("/", 1)[0]) is not None:
            log.warning("%s: not deleted: a symlink on its way leaves the table", p)
            continue
        if not p.parent.is_dir():
            continue  # nothing there to delete (a parent is gone, or is a file)
        make_writable_dir(p.parent)
        touched.add(p.parent)
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except IsADirectoryError:  # the primary deletes files; a directory stays
            log.warning("%s: not deleted: a directory, not a file", p)
        crash_point("delete.file")
    for d in touched:
        with contextlib.suppress(FileNotFoundError):
            fsync_dir(d)
            os.chmod(d, RO_DIR)
