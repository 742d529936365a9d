"""Planned switchover (run on the primary): fence, last round, wait, swap roles, no data lost.

Steps, each recorded in the journal `<primary-meta>/role-change.json` before it starts:

    fencing      the journal holds every table's directory modes; then the tables are fenced
    final-round  backup rounds until a set carries every table at its fenced version; the
                 standby restores it; every table's version there must equal the primary's
    swapping     (the point of no return) the new primary's inventories and state are written
                 into the old standby's metadata directory, then the new standby's state into
                 the old primary's; table modes follow the new roles; the journal goes

A failure before `swapping` rolls back (tables unfenced, roles unchanged) and says what
happened; a crash before it is rolled back by the next run; a crash during it is completed by
the next run (every swap step can be repeated). Both sides are byte-identical at the final
barrier, so the new primary continues from it: its first set builds on the final key, which is
exactly what the new standby last restored. No full copy.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drsync.config import Settings
from drsync.errors import DrsyncError, LockBusyError, RoleError, TransportError
from drsync.fsutil import atomic_write_json, read_json_object
from drsync.peer import Peer, both_sites_here, open_peer
from drsync.primary.round import RoundResult, run_backup
from drsync.roles import audit
from drsync.roles.epoch import assert_site_role, changing_roles, read_role, write_role
from drsync.roles.fence import dir_modes, fence_table, unfence_table
from drsync.roles.sites import Pair, swapped_config
from drsync.roles.swap import SwapPoint, demote
from drsync.sets.barriers import set_versions
from drsync.site.layout import JOURNAL_FILE, intent_name
from drsync.site.state import PrimaryState, StandbyState, load_state, stop_requested
from drsync.site.warehouse import TableRef, discover_tables
from drsync.tableformat import require_format

Say = Callable[[str], None]
ROUNDS = 5  # final rounds tried before giving up (each catches commits in flight at the fence)
BUSY_WAIT_S = 120.0  # how long a final round waits for a round the daemon is running


def load_journal(meta: Path) -> dict[str, Any] | None:
    return read_json_object(meta / JOURNAL_FILE)


def _save_journal(meta: Path, journal: dict[str, Any]) -> None:
    atomic_write_json(meta / JOURNAL_FILE, journal)


def run_switchover(settings: Settings, config: Path, *, dry_run: bool = False, timeout: float = 300.0,
                   say: Say = print) -> int:
    pair = Pair(settings, config)
    if not both_sites_here(settings) and settings.remote_config_file is None:
        raise TransportError(
            "switchover over SSH needs remote-config-file: the standby's agent restores "
            "and takes the primary role with its own config",
            hint="set remote-config-file to backupRestore.ini's path on the standby host")
    with open_peer(settings) as standby:
        return _switchover(pair, standby, dry_run, timeout, say)


def _switchover(pair: Pair, standby: Peer, dry_run: bool, timeout: float, say: Say) -> int:
    config = pair.config
    journal = load_journal(pair.pm)
    if journal is not None and not dry_run:
        if journal.get("step") == "swapping":
            say("a previous switchover stopped while swapping roles: completing it")
            return _finish(pair, standby, journal, say)
        _rollback(pair, journal)
        say(f"a previous switchover stopped at step {journal.get('step')!r}: rolled back (tables unfenced)")
    assert_site_role(pair.pm, "primary", "switchover")
    peer = standby.role()
    if peer.role not in (None, "standby") or standby.read("metadata", StandbyState.FILE) is None:
        raise RoleError(f"switchover: the other site ({pair.sm}) is not a standby "
                        f"({peer.role or 'no standby state'}, role epoch {peer.epoch})")
    if stop_requested(pair.pm, "backup") or standby.read("metadata", intent_name("restore")) is not None:
        op = "backup" if stop_requested(pair.pm, "backup") else "restore"
        raise RoleError(f"switchover: {op} is stopped (stop-{op}); the final round needs it",
                        hint=f"run `drsync start-{op}` with this site's config first")
    last_key = load_state(pair.pm, PrimaryState).last_key
    if last_key is None:
        raise RoleError("switchover: the primary has not built a set yet; nothing to switch from",
                        hint="run a backup and a restore first")
    # The replicated tables are those of the newest set (publications decide which); a table
    # of the primary's own is neither fenced nor made read-only by the swap.
    replicated = set_versions(pair.pm, last_key)
    tables = [t for t in discover_tables(pair.pw, pair.settings.warehouse_layout) if t.name in replicated]
    sw_path, _ = swapped_config(config, write=not dry_run)
    new_epoch = max(read_role(pair.pm).epoch, peer.epoch) + 1
    plan = [
        f"1. fence {len(tables)} table(s) in {pair.pw}: writers fail with 'Permission denied' "
        "(not a writer running as root: a commit it makes after the fence is detected and rolls back)",
        f"2. run a final backup round and wait up to {timeout:.0f} s until the standby restored it",
        "3. check every table's version on the standby equals the primary's",
        f"4. swap roles at epoch {new_epoch}: {pair.sm} becomes the primary, {pair.pm} the standby "
        f"(use {sw_path} from then on)",
        f"5. make the tables in {pair.sw} writable and those in {pair.pw} read-only",
        "6. continue replication in the new direction from the final set (no full copy)",
    ]
    if dry_run:
        say("switchover plan (dry run, nothing changed):")
        for line in plan:
            say("  " + line)
        return 0
    journal = {"op": "switchover", "step": "fencing", "config": str(config), "sw_config": str(sw_path),
               "old_epoch": new_epoch - 1, "new_epoch": new_epoch, "fence": {}}
    # The fence record: every directory's mode, in the journal before the first chmod.
    journal["fence"] = {t.name: dir_modes(t.path(pair.pw)) for t in tables}
    _save_journal(pair.pm, journal)
    try:
        with changing_roles(pair.pm):
            _fence_and_drain(pair, standby, journal, tables, timeout, say)
    except (DrsyncError, OSError) as e:
        step = journal["step"]
        _rollback(pair, journal)
        msg = e.message if isinstance(e, DrsyncError) else f"{e.strerror or e} ({e.filename})"
        audit.record([pair.pm, pair.sm], "switchover", config, f"rolled back at {step}: {msg}",
                     new_epoch - 1)
        raise RoleError(f"switchover failed at step {step}: {msg}; rolled back: roles unchanged, "
                        "the primary's tables are unfenced", hint=getattr(e, "hint", "")) from None
    except KeyboardInterrupt:  # Ctrl-C before the point of no return: leave nothing fenced
        _rollback(pair, journal)
        say("switchover interrupted before swapping roles: rolled back, the primary's tables are unfenced")
        raise
    return _finish(pair, standby, journal, say)


def _fence_and_drain(pair: Pair, standby: Peer, journal: dict[str, Any], tables: list[TableRef],
                     timeout: float, say: Say) -> None:
    """Fence, final round, wait for the standby; then record the point of no return."""
    for t in tables:
        fence_table(t.path(pair.pw))
    say(f"fenced {len(tables)} table(s) on the primary")
    journal["step"] = "final-round"
    _save_journal(pair.pm, journal)
    key, barrier_ms, versions = _final_round(pair, tables, say)
    state = _wait_restored(standby, key, versions, timeout, say)
    _check_unchanged(pair, versions)
    ids = {n: state.tables[n].table_id for n in versions}
    journal.update(step="swapping", key=key, barrier_ms=barrier_ms, versions=versions, table_ids=ids)
    _save_journal(pair.pm, journal)


def _latest(pair: Pair, tables: list[TableRef]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in tables:
        tdir = t.path(pair.pw)
        v = require_format(tdir).read_log(tdir).latest_version
        if v is not None:
            out[t.name] = v
    return out


def _final_round(pair: Pair, tables: list[TableRef], say: Say) -> tuple[str, int, dict[str, int]]:
    for _ in range(ROUNDS):
        result = _round_when_free(pair.settings)
        if result.failed:
            raise RoleError("the final round left out " + ", ".join(f"{f.name} ({f.error})"
                                                                    for f in result.failed))
        state = load_state(pair.pm, PrimaryState)
        assert state.last_key is not None and state.last_barrier_ms is not None
        versions = set_versions(pair.pm, state.last_key)
        latest = _latest(pair, tables)
        if all(versions.get(n) == v for n, v in latest.items()):
            say(f"final set {state.last_key} carries every table at its fenced version")
            return state.last_key, state.last_barrier_ms, latest
    raise RoleError(f"after {ROUNDS} rounds the last set still misses commits made before the fence")


def _round_when_free(settings: Settings) -> RoundResult:
    """One backup round; a round the primary's daemon is running meanwhile (in continuous mode it
    ships commits back to back, and the fence itself is a change it sees) is waited for."""
    deadline = time.monotonic() + BUSY_WAIT_S
    while True:
        try:
            return run_backup(settings)
        except LockBusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def _wait_restored(standby: Peer, key: str, versions: dict[str, int], timeout: float,
                   say: Say) -> StandbyState:
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            standby.restore()
        except LockBusyError:
            pass  # a busy restore (the standby's daemon) is simply waited for
        except DrsyncError as e:
            last_error = e.message
        state = standby.standby_state()
        if state.last_key is not None and state.last_key >= key:
            break
        if time.monotonic() > deadline:
            why = f"; its last restore failed: {last_error}" if last_error else ""
            raise RoleError(f"the standby did not restore set {key} within {timeout:.0f} s "
                            f"(it is at {state.last_key or 'no set'}){why}")
        time.sleep(0.5)
    behind = [f"{n} ({state.tables[n].version if n in state.tables else 'absent'} != {v})"
              for n, v in versions.items() if n not in state.tables or state.tables[n].version != v]
    if behind:
        raise RoleError("the standby differs from the fenced primary: " + ", ".join(behind))
    say(f"standby restored {key}: every table at the primary's version")
    return state


def _check_unchanged(pair: Pair, versions: dict[str, int]) -> None:
    """Mode bits do not stop root: a commit after the fence would be lost by the swap."""
    tables = [TableRef.parse(n) for n in versions]
    now = _latest(pair, tables)
    moved = [f"{n} ({versions[n]} -> {v})" for n, v in now.items() if v != versions[n]]
    if moved:
        raise RoleError("table(s) changed on the primary after the fence (a writer running as root?): "
                        + ", ".join(moved))


def _rollback(pair: Pair, journal: dict[str, Any]) -> None:
    for name, modes in journal.get("fence", {}).items():
        with contextlib.suppress(FileNotFoundError):
            unfence_table(TableRef.parse(name).path(pair.pw), modes)
    (pair.pm / JOURNAL_FILE).unlink(missing_ok=True)


def _finish(pair: Pair, standby: Peer, journal: dict[str, Any], say: Say) -> int:
    """The swap. Every step can be repeated: a crash here is completed by the next run."""
    point = SwapPoint(int(journal["new_epoch"]), str(journal["key"]), int(journal["barrier_ms"]),
                      dict(journal["versions"]), dict(journal.get("table_ids", {})))
    # This side's new role first: over SSH our agent calls then carry the new epoch, so a
    # re-run after a crash is not refused by a standby that was already promoted.
    write_role(pair.pm, "standby", point.epoch)
    standby.promote(point)
    demote(pair.settings, point)
    (pair.pm / JOURNAL_FILE).unlink(missing_ok=True)
    sw = journal.get("sw_config", "sw_backupRestore.ini")
    audit.record([pair.pm, pair.sm], "switchover", Path(journal["config"]),
                 f"done: {pair.sm} is the primary, {pair.pm} the standby", point.epoch,
                 f"final set {point.key}")
    say(f"switchover done at role epoch {point.epoch}: the primary is now "
        f"{pair.settings.standby_warehouse}, the standby {pair.settings.primary_warehouse}; "
        f"both at set {point.key}")
    say(f"from now on run drsync with -c {sw} (it names the new primary first)")
    return 0
