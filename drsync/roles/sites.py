"""Both sites of a config as a role change sees them, and the few file moves role changes share.

With transport=local a role change acts on both sites directly (they are on this host); over
SSH it drives the other site through its agent (roles/remote.py).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from drsync.config import Settings, load_settings, swap_config_text
from drsync.errors import ConfigError, RoleError
from drsync.fsutil import atomic_write_bytes, atomic_write_json, ensure_dir, fsync_dir, rmtree_force
from drsync.primary.changes import TableInventory
from drsync.site.state import LAST_RESTORED, local_time
from drsync.site.warehouse import TableRef

HISTORY_DIR = "role-history"  # where a role change keeps the state files it replaced


@dataclass(frozen=True)
class Pair:
    """The primary and the standby as this config names them."""

    settings: Settings
    config: Path

    @property
    def pm(self) -> Path:
        return self.settings.primary_metadata_destination

    @property
    def sm(self) -> Path:
        return self.settings.restore_metadata_destination

    @property
    def pw(self) -> Path:
        return self.settings.primary_warehouse

    @property
    def sw(self) -> Path:
        return self.settings.standby_warehouse

    @property
    def pmedia(self) -> Path:
        return self.settings.primary_media_destination

    @property
    def smedia(self) -> Path:
        return self.settings.restore_media_destination


def swapped_name(name: str) -> str:
    """sw_backupRestore.ini for backupRestore.ini, and back (switching back uses the original)."""
    return name[3:] if name.startswith("sw_") else f"sw_{name}"


def swapped_config(config: Path, write: bool) -> tuple[Path, Settings | None]:
    """sw_<name> next to the config: written if absent (as `drsync config swap` prints it),
    checked if present: its primary must be this config's standby and vice versa."""
    sw = config.with_name(swapped_name(config.name))
    if not sw.exists():
        if not write:
            return sw, None
        atomic_write_bytes(sw, swap_config_text(config.read_text()).encode())
    try:
        swapped = load_settings(sw)
    except ConfigError as e:
        raise RoleError(f"{sw}: {e.message}", hint="fix it or delete it; switchover writes it") from None
    mine = load_settings(config)
    if (swapped.primary_metadata_destination != mine.restore_metadata_destination
            or swapped.restore_metadata_destination != mine.primary_metadata_destination
            or swapped.primary_warehouse != mine.standby_warehouse):
        raise RoleError(f"{sw} does not swap the sites of {config} (primary/standby keys differ)",
                        hint=f"delete {sw}; the role command writes it with `drsync config swap`")
    return sw, swapped


def archive(meta: Path, names: list[str], tag: str) -> list[str]:
    """Move state files a role change replaces to `<meta>/role-history/<time>-<tag>/` (kept
    for the record, out of the way of the side's new role)."""
    dest = meta / HISTORY_DIR / f"{time.strftime('%Y%m%d_%H%M%S')}-{tag}"
    moved: list[str] = []
    for name in names:
        src = meta / name
        if src.exists():
            ensure_dir(dest)
            os.replace(src, dest / name)
            moved.append(name)
    if moved:
        fsync_dir(meta)
    return moved


def write_inventories(meta: Path, inventories: dict[str, TableInventory]) -> None:
    """A new primary's inventories: written fresh (old ones and the unchanged-table index of an
    earlier primary role are dropped: they describe another peer)."""
    tables = meta / "tables"
    rmtree_force(tables)
    for name, inv in inventories.items():
        ref = TableRef.parse(name)
        path = tables / ref.db / ref.schema / f"{ref.table}.json"
        ensure_dir(path.parent)
        atomic_write_json(path, inv.to_json())


def write_inventories_merge(meta: Path, inventories: dict[str, TableInventory]) -> None:
    """Replace some of a primary's inventories, keeping the others."""
    for name, inv in inventories.items():
        ref = TableRef.parse(name)
        atomic_write_json(meta / "tables" / ref.db / ref.schema / f"{ref.table}.json", inv.to_json())
    remove(meta / "tables" / "index.json")  # the unchanged-table index must look again


def write_last_restored(meta: Path, key: str, barrier_ms: int) -> None:
    atomic_write_json(meta / LAST_RESTORED, {"key": key, "barrier_ms": barrier_ms})


def stamp() -> str:
    return time.strftime("%Y%m%d_%H%M%S")


def when(ms: int | None) -> str:
    return local_time(ms / 1000) if ms is not None else ""


def remove(path: Path) -> bool:
    if path.is_dir():
        rmtree_force(path)
        return True
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        return True
    return False
