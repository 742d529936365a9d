"""Retention: delete what life-cycle no longer asks us to keep, never what is still needed.

On either side a set (its bundles `<media>/<key>/` and its manifest
`<metadata>/manifests/<key>.manifest.json`) is deleted only when all of these hold:

* it is **restored**: key <= the standby's `last_key` (on the primary that key is read from
  the standby's state over the transport, like show-progress does);
* it is **older than life-cycle**, by its key (the barrier's UTC time);
* it is **not the newest set** on that side;
* on the primary, it is not waiting to be shipped (`unshipped`).

On the standby, barrier maps `<standby-warehouse>/_drsync/barriers/<key>.json` of restored
sets older than life-cycle go too, except the newest one and those a live drill holds.
Rejected manifests (`manifests/rejected/`) are evidence and are never touched. The manifest goes after the
bundles, so a run interrupted half way still lists the set and finishes it next time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from drsync.config import Role, Settings, load_settings
from drsync.errors import DrsyncError, LockBusyError
from drsync.fsutil import rmtree_force
from drsync.logsetup import setup_logging
from drsync.sets.manifest import key_time
from drsync.site.compaction import keys_to_thin, thin_history
from drsync.site.drills import held_barriers
from drsync.site.host_role import detect_role
from drsync.site.layout import (
    BARRIER_MAP_NAME,
    LOCK_DIR,
    MANIFEST_DIR,
    MANIFEST_NAME,
    SET_KEY,
    MetadataLayout,
    WarehouseLayout,
    set_dir,
)
from drsync.site.locks import operation_lock
from drsync.site.progress import read_states
from drsync.site.state import StandbyState, load_state


@dataclass
class RetentionReport:
    role: Role
    restored_up_to: str | None
    deleted_sets: list[str] = field(default_factory=list)
    deleted_barrier_maps: list[str] = field(default_factory=list)
    thinned_barrier_maps: int = 0  # continuous mode: older than an hour, not last of a minute
    thinned_history_rows: int = 0
    kept_sets: int = 0
    bytes_freed: int = 0

    @property
    def message(self) -> str:
        kept = f"kept {self.kept_sets} set(s) (not restored, newer than life-cycle, or the newest)"
        if not self.deleted_sets and not self.deleted_barrier_maps:
            restored = (f"the standby is restored up to {self.restored_up_to}" if self.restored_up_to
                        else "no set is restored on the standby yet")
            return f"retention ({self.role}): nothing to delete; {kept}; {restored}{self.thinned}"
        span = (f" {self.deleted_sets[0]}..{self.deleted_sets[-1]}" if len(self.deleted_sets) > 1
                else "".join(f" {k}" for k in self.deleted_sets))
        maps = f" and {len(self.deleted_barrier_maps)} barrier map(s)" if self.deleted_barrier_maps else ""
        return (f"retention ({self.role}): deleted {len(self.deleted_sets)} set(s){span}{maps}, "
                f"{self.bytes_freed / 1e6:.1f} MB freed; {kept}{self.thinned}")

    @property
    def thinned(self) -> str:
        if not self.thinned_barrier_maps and not self.thinned_history_rows:
            return ""
        return (f"; thinned to one a minute past an hour: {self.thinned_barrier_maps} barrier map(s), "
                f"{self.thinned_history_rows} history row(s)")


def _keys_in(directory: Path, pattern: re.Pattern[str], *, dirs: bool) -> set[str]:
    keys: set[str] = set()
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            m = pattern.match(entry.name)
            if m and entry.is_dir(follow_symlinks=False) == dirs:
                keys.add(m[1])
    return keys


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _expired(keys: set[str], restored: str | None, cutoff: datetime, protected: set[str]) -> list[str]:
    if restored is None or not keys:
        return []
    newest = max(keys)
    return sorted(k for k in keys
                  if k <= restored and k != newest and k not in protected and key_time(k) < cutoff)


def run_retention(settings: Settings, role: Role, now: datetime | None = None) -> RetentionReport:
    """Delete expired restored sets on this host's side; `report.message` says what was done."""
    meta, media = settings.metadata_dir(role), settings.media_dir(role)
    cutoff = (now or datetime.now(UTC)) - settings.life_cycle
    with operation_lock(meta / LOCK_DIR, "retention"):
        protected: set[str] = set()
        if role == "primary":

            primary, standby = read_states(settings)
            protected = set(primary.unshipped)
        else:
            standby = load_state(meta, StandbyState)
        report = RetentionReport(role, standby.last_key)
        manifests = meta / MANIFEST_DIR
        sets = _keys_in(media, SET_KEY, dirs=True) | _keys_in(manifests, MANIFEST_NAME, dirs=False)
        for key in _expired(sets, standby.last_key, cutoff, protected):
            bundles = set_dir(media, key)
            report.bytes_freed += _tree_size(bundles)
            rmtree_force(bundles)
            manifest = MetadataLayout(meta).manifest(key)
            with contextlib.suppress(FileNotFoundError):
                report.bytes_freed += manifest.stat().st_size
                manifest.unlink()
            report.deleted_sets.append(key)
        report.kept_sets = len(sets) - len(report.deleted_sets)
        if role == "standby":
            maps_dir = WarehouseLayout(settings.standby_warehouse).barriers
            maps = _keys_in(maps_dir, BARRIER_MAP_NAME, dirs=False)
            # A live drill holds its barrier map (roles/drill.py); the files it forked are safe
            # anyway: it holds hard links to them, which no removal on the standby takes away.
            for key in _expired(maps, standby.last_key, cutoff, held_barriers(settings)):
                path = WarehouseLayout(settings.standby_warehouse).barrier_map(key)
                with contextlib.suppress(FileNotFoundError):
                    report.bytes_freed += path.stat().st_size
                    path.unlink()
                report.deleted_barrier_maps.append(key)
    if settings.replication_mode == "continuous":
        _thin(settings, role, now or datetime.now(UTC), report)
    return report


def _thin(settings: Settings, role: Role, now: datetime, report: RetentionReport) -> None:
    """Continuous mode's many small sets: history past an hour kept at one a minute
    (site/compaction.py). The csv is rewritten under the lock of the pass that appends to it;
    when that pass runs, thinning waits for the next retention."""
    meta = settings.metadata_dir(role)
    if role == "standby":
        layout = WarehouseLayout(settings.standby_warehouse)
        maps = _keys_in(layout.barriers, BARRIER_MAP_NAME, dirs=False)
        for key in keys_to_thin(maps, now, held_barriers(settings)):
            with contextlib.suppress(FileNotFoundError):
                layout.barrier_map(key).unlink()
                report.thinned_barrier_maps += 1
    appender = "backup" if role == "primary" else "restore"
    with contextlib.suppress(LockBusyError), operation_lock(meta / LOCK_DIR, appender):
        report.thinned_history_rows = thin_history(meta / settings.backuprestoreinfo_file, now)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="drsync retention", description=(
        "Delete bundles and manifests of restored sets older than life-cycle on this host's side "
        "(never an unrestored set, never the newest)."))
    ap.add_argument("-c", "--config", type=Path, required=True, help="backupRestore.ini of this site")
    ap.add_argument("--role", choices=["primary", "standby"], help="assert the role this host holds")
    return ap


def main(argv: list[str] | None = None) -> int:
    """`python -m drsync.site.retention -c FILE [--role R]`: the one-shot `drsync retention`."""
    args = build_parser().parse_args(argv)

    try:
        settings = load_settings(args.config)
        role = detect_role(settings, args.role)
        setup_logging(settings, role, to_file=False)
        report = run_retention(settings, role)
    except DrsyncError as e:
        print(f"error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return e.exit_code
    print(report.message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
