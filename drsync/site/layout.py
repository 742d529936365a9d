"""Every path and name pattern of a site, in one place. Nothing else spells them.

Under a metadata destination (primary-/restore-metadata-destination):

    primary-state.json | standby-state.json   the side's state (distinct names: a host knows
                                  its side even when both sites use the same paths)
    manifests/<key>.manifest.json manifests (on the standby: the inbox, written last)
    tables/<db>/<schema>/<table>.json   primary: what the standby holds of a table
    tables/index.json             primary: the unchanged-table fast path's index
    locks/<operation>.lock        one lock per operation, with the holder's PID
    stop-<operation>.intent       stop-backup / stop-restore asked for
    backuprestoreinfo.csv         one row per set (name configurable)
    last-restored.json, role.json, role-change.json, pair.json, publications.json, reseed.json,
    last-full-set.json, audit.log, role-history/, logs/drsync.log, <state>.remote-cache

Under a media destination: `<key>/<key>_<nnnn>.tar[.zst]` (one directory of bundles per set).
Under a warehouse: `_drsync/` holds drsync's own files there: `barriers/<key>.json` (a set's
table versions, the standby's barrier map), `staging/<key>/`, and the role changes'
`failover-quarantine/<time>/`, `reprotect-quarantine/<time>/`. Paths inside a table (its log,
its data files) are the table format's (drsync/tableformat/), not these.

A set key is the barrier's time in UTC, `YYYYMMDD_HHMMSS`: keys sort in time order.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Protocol

from drsync.site.names import HIVE_DB_SUFFIX


class TableRef(Protocol):
    """A table's three-part name (drsync.site.warehouse.TableRef)."""

    @property
    def db(self) -> str: ...
    @property
    def schema(self) -> str: ...
    @property
    def table(self) -> str: ...

# ---- set keys

KEY_FORMAT = "%Y%m%d_%H%M%S"
KEY_LENGTH = 15
_KEY = r"\d{8}_\d{6}"
SET_KEY = re.compile(rf"^({_KEY})$")  # a set's key; also its bundle directory in the media area
MANIFEST_NAME = re.compile(rf"^({_KEY})\.manifest\.json$")
BARRIER_MAP_NAME = re.compile(rf"^({_KEY})\.json$")
SET_ENTRY_NAME = re.compile(rf"^({_KEY})(\.manifest\.json)?$")  # a set's directory or its manifest
BARRIER_OR_MANIFEST_NAME = re.compile(rf"^({_KEY})\.(?:json|manifest\.json)$")


def stamp() -> str:
    """Now, as the time part of role-history and quarantine directory names (local time)."""
    return time.strftime(KEY_FORMAT)


def is_set_key(name: str) -> bool:
    return SET_KEY.match(name) is not None


def manifest_key(name: str) -> str | None:
    """The key of a manifest file name, or None if `name` is not one."""
    m = MANIFEST_NAME.match(name)
    return m[1] if m else None


def manifest_name(key: str) -> str:
    return f"{key}.manifest.json"


def barrier_map_name(key: str) -> str:
    return f"{key}.json"


def bundle_suffix(compression: str) -> str:
    return {"zstd": ".tar.zst", "raw": ".raw"}.get(compression, ".tar")


def bundle_name(key: str, index: int, compression: str) -> str:
    return f"{key}_{index:04d}{bundle_suffix(compression)}"


def bundle_rel(key: str, name: str) -> str:
    """A bundle's path relative to the media area."""
    return f"{key}/{name}"


# ---- the metadata destination

PRIMARY_STATE_FILE = "primary-state.json"
STANDBY_STATE_FILE = "standby-state.json"
VERIFY_STATE_FILE = "verify-state.json"  # the standby's continuous verification (standby/continuous.py)
FILE_HASH_DIR = "file-hashes"  # the standby's record of each replicated file's hash, per table
MANIFEST_DIR = "manifests"
REJECTED_DIR = "rejected"
INVENTORY_DIR = "tables"
INDEX_FILE = "index.json"
LOCK_DIR = "locks"
LAST_RESTORED = "last-restored.json"  # standby: {"key", "barrier_ms"} of the newest restored set
ROLE_FILE = "role.json"
JOURNAL_FILE = "role-change.json"  # an unfinished role change (see switchover.py)
PAIR_FILE = "pair.json"
PUBLICATIONS_FILE = "publications.json"
RESEED_FILE = "reseed.json"
LAST_FULL_FILE = "last-full-set.json"
LAST_ROUND_FILE = "last-round.json"  # primary: when the newest round was cut (one-shot runs)
AUDIT_FILE = "audit.log"
HISTORY_DIR = "role-history"  # where a role change keeps the state files it replaced
LOG_DIR = "logs"
LOG_FILE = "drsync.log"
HISTORY_CSV = "backuprestoreinfo.csv"  # the default of backuprestoreinfo-file
RPO_HISTORY_FILE = "rpo-history.json"  # the dashboard's 24 h RPO chart (site/rpo_history.py)
DRILLS_DIR = "drills"  # under restore-metadata-destination: one record per drill (site/drills.py)
REMOTE_CACHE_SUFFIX = ".remote-cache"

# Exactly what a primary ships through the standby's agent (transport/confine.py allows only
# these): a set's bundles into the media area, its manifest into the metadata area.
SHIPPED_BUNDLE_REL = re.compile(rf"^(?P<key>{_KEY})/(?P=key)_\d{{4,6}}\.(?:tar(?:\.zst)?|raw)$")
SHIPPED_MANIFEST_REL = re.compile(rf"^{MANIFEST_DIR}/{_KEY}\.manifest\.json$")


def manifest_rel(key: str) -> str:
    """A manifest's path relative to the metadata area."""
    return f"{MANIFEST_DIR}/{manifest_name(key)}"


def intent_name(operation: str) -> str:
    return f"stop-{operation}.intent"


def remote_cache_name(state_file: str) -> str:
    """This host's copy of the other side's state file (shown when it cannot be reached)."""
    return state_file + REMOTE_CACHE_SUFFIX


def lock_name(operation: str) -> str:
    return f"{operation}.lock"


class MetadataLayout:
    """The paths under one metadata destination."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def manifests(self) -> Path:
        return self.root / MANIFEST_DIR

    def manifest(self, key: str) -> Path:
        return self.manifests / manifest_name(key)

    @property
    def rejected(self) -> Path:
        """Where the standby sets aside a manifest it cannot use (never deleted: evidence)."""
        return self.manifests / REJECTED_DIR

    def rejected_manifest(self, key: str, at: int) -> Path:
        return self.rejected / f"{manifest_name(key)}.{at}"

    @property
    def failover_set_aside(self) -> Path:
        """Where a failover moves the sets after its recovery point (never applied, kept)."""
        return self.manifests / "failover-set-aside"

    @property
    def inventories(self) -> Path:
        return self.root / INVENTORY_DIR

    def inventory(self, table: TableRef) -> Path:
        """`tables/<db>/<schema>/<table>.json`, or in the hive layout (no schema)
        `tables/<db>.db/<table>.json`: never one level deep, where `tables/index.json` lives."""
        if table.schema:
            return self.inventories / table.db / table.schema / f"{table.table}.json"
        return self.inventories / f"{table.db}{HIVE_DB_SUFFIX}" / f"{table.table}.json"

    def inventory_files(self) -> list[Path]:
        """Every inventory file of either layout, sorted."""
        return [Path(path) for *_, path in self._inventories()]

    def inventory_tables(self) -> list[tuple[str, str, str]]:
        """(db, schema, table) of every inventory file, as `inventory_table` of each of
        `inventory_files`, without building and parsing a Path per table (every round)."""
        return [(db, schema, table) for db, schema, table, _ in self._inventories()]

    def inventory_table(self, path: Path) -> tuple[str, str, str]:
        """(db, schema, table) of an inventory file; schema "" in the hive layout."""
        parts = path.relative_to(self.inventories).parts
        if len(parts) == 2:
            return parts[0][: -len(HIVE_DB_SUFFIX)], "", parts[1][: -len(".json")]
        return parts[0], parts[1], parts[2][: -len(".json")]

    def _inventories(self) -> list[tuple[str, str, str, str]]:
        """(db, schema, table, path) of every inventory: what `glob("*/*/*.json")` then
        `glob("*.db/*.json")` under `tables/` find, each sorted by path, in one scandir walk."""
        dws: list[tuple[str, str, str, str]] = []
        hive: list[tuple[str, str, str, str]] = []
        for db in _scandir(str(self.inventories)):
            if not db.is_dir():
                continue  # index.json
            for entry in _scandir(db.path):
                if entry.name.endswith(".json") and db.name.endswith(HIVE_DB_SUFFIX):
                    hive.append((db.name, "", entry.name, entry.path))
                if entry.is_dir():
                    dws += [(db.name, entry.name, f.name, f.path)
                            for f in _scandir(entry.path) if f.name.endswith(".json")]
        dws.sort()
        hive.sort()
        return ([(d, s, t[: -len(".json")], p) for d, s, t, p in dws]
                + [(d[: -len(HIVE_DB_SUFFIX)], s, t[: -len(".json")], p) for d, s, t, p in hive])

    @property
    def index(self) -> Path:
        return self.inventories / INDEX_FILE

    @property
    def barriers(self) -> Path:
        """Primary: the whole barrier map of its newest sets (sets/barriers.py)."""
        return self.root / BARRIER_DIR

    def barrier_map(self, key: str) -> Path:
        return self.barriers / barrier_map_name(key)

    def file_hashes(self, table_relpath: str) -> Path:
        """The standby's recorded hashes of one table's files (`file-hashes/<table dir>.json`)."""
        return self.root / FILE_HASH_DIR / f"{table_relpath}.json"

    @property
    def locks(self) -> Path:
        return self.root / LOCK_DIR

    def intent(self, operation: str) -> Path:
        return self.root / intent_name(operation)

    @property
    def history(self) -> Path:
        return self.root / HISTORY_DIR

    @property
    def log_file(self) -> Path:
        return self.root / LOG_DIR / LOG_FILE


# ---- the media destination


def inventory_sort_key(table: TableRef) -> tuple[int, str, str, str]:
    """Where `table`'s inventory sorts in `MetadataLayout.inventory_tables` (dws ones by path,
    then hive ones by path), without building its path."""
    if table.schema:
        return (0, table.db, table.schema, f"{table.table}.json")
    return (1, f"{table.db}{HIVE_DB_SUFFIX}", "", f"{table.table}.json")


def _scandir(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []


def set_dir(media: Path, key: str) -> Path:
    return media / key


# ---- drsync's own files in a warehouse

DRSYNC_DIR = "_drsync"
BARRIER_DIR = "barriers"
STAGING_DIR = "staging"


class WarehouseLayout:
    """drsync's directory inside a warehouse (never a table: table discovery skips it)."""

    def __init__(self, warehouse: Path) -> None:
        self.warehouse = warehouse
        self.root = warehouse / DRSYNC_DIR

    @property
    def barriers(self) -> Path:
        return self.root / BARRIER_DIR

    def barrier_map(self, key: str) -> Path:
        return self.barriers / barrier_map_name(key)

    @property
    def staging(self) -> Path:
        return self.root / STAGING_DIR

    def quarantine(self, kind: str, stamp: str) -> Path:
        """Where a role change (`failover` or `reprotect`) sets a table's commits aside."""
        return self.root / f"{kind}-quarantine" / stamp
