"""The key table of backupRestore.ini: every key, its parser and what it allows.

Ranges and cross-field rules live here, not in the pydantic model: only this layer knows file
names and line numbers (see loader.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import get_args

from drsync.config.model import LogLevel
from drsync.config.values import (
    Parser,
    absolute_path,
    catalog_name,
    choice,
    command,
    duration,
    file_name,
    host,
    integer,
    parse_size_per_second,
    percentage,
    sqlalchemy_url,
    username,
    uuid_value,
    windows,
)


@dataclass(frozen=True)
class Key:
    name: str  # as written in the file
    parse: Parser
    allowed: str  # the "allowed: ..." part of its errors
    required_because: str = ""  # set for required keys: what the missing value is
    field_name: str = ""  # when the Settings field is not the key in snake_case

    @property
    def field(self) -> str:
        return self.field_name or self.name.replace("-", "_")


_ABS = "absolute path"
_PORT = integer(1, 65535)
_HOST = "host name or IP address"
_LEVEL = choice({level.lower(): level for level in get_args(LogLevel)})
_LEVELS = "FATAL, ERROR, WARNING, INFO, DEBUG (default INFO)"
_WORKERS = "integer 1-32 (default 4)"

KEYS = (
    # A bare number is days: the DWS tool's files write life-cycle as a plain count of days.
    Key("life-cycle", duration("d", timedelta(0)), "duration s/m/h/d, bare number = days (default 7d)"),
    Key("backuprestoreinfo-file", file_name, "a file name without '/'"),
    Key("username", username, "an OS user name"),
    Key("primary-env", absolute_path, f"{_ABS} or empty"),
    Key("standby-env", absolute_path, f"{_ABS} or empty"),
    Key("primary-warehouse", absolute_path, _ABS, "absolute path of the primary warehouse root"),
    Key("standby-warehouse", absolute_path, _ABS, "absolute path of the standby warehouse root"),
    Key("full-backup-exec-time-interval", duration("m", timedelta(seconds=1)),
         "duration >= 1s (bare number = minutes) or N/A"),
    Key("backup-exec-time-interval", duration("m", timedelta(seconds=10)),
         "duration >= 10s (bare number = minutes, default 1m)"),
    Key("restore-interval", duration("m", timedelta(seconds=1)),
         "duration >= 1s (bare number = minutes, default 1m)"),
    Key("restore-delay", duration("m", timedelta(0)), "duration >= 0 (bare number = minutes, default 0)"),
    # off: a file shipped as it is was hashed by the agent while it arrived and is linked into
    # the table unread; full: restore hashes it once more first (docs/config spec: verify-on-restore)
    Key("verify-on-restore", choice({"off": "off", "full": "full"}), "off or full (default off)"),
    Key("primary-host-ip", host, _HOST),
    Key("restore-host-ip", host, _HOST),
    Key("media-type", choice({"disk": "disk"}), "disk (the only media type drsync has)"),
    # 'parrallel' is the DWS tool's spelling; the correct one is accepted too, but not both.
    Key("parrallel-process", integer(1, 32), _WORKERS, field_name="parallel_process"),
    Key("parallel-process", integer(1, 32), _WORKERS),
    Key("compression-level", integer(0, 9), "integer 0-9 (default 1)"),
    Key("compression-type", choice({"zstd": "zstd", "2": "zstd", "none": "none", "0": "none"}),
         "zstd (or the DWS tool's 2) or none (or 0); drsync bundles are zstd, no other codec"),
    Key("primary-media-destination", absolute_path, _ABS,
         "absolute path where bundles wait on the primary"),
    Key("primary-metadata-destination", absolute_path, _ABS,
         "absolute path of the primary's state, manifests and logs"),
    Key("backup-port", _PORT, "integer 1-65535"),
    Key("primary-cluster-logging-level", _LEVEL, _LEVELS),
    Key("restore-media-destination", absolute_path, _ABS,
         "absolute path of the bundle inbox on the standby"),
    Key("restore-metadata-destination", absolute_path, _ABS,
         "absolute path of the standby's state, manifests and logs"),
    Key("restore-port", _PORT, "integer 1-65535"),
    Key("standby-cluster-logging-level", _LEVEL, _LEVELS),
    Key("log-file-count", integer(5, 1024), "integer 5-1024 (default 50)"),
    Key("check-balance-retry-times", integer(0), "integer >= 0 (default 3)"),
    Key("primary-cluster-id", uuid_value, "UUID"),
    Key("standby-cluster-id", uuid_value, "UUID"),
    Key("desync-table-operation",
         choice({v: v for v in ("none", "log-desync-table", "drop-desync-table")}),
         "none, log-desync-table, drop-desync-table (default none)"),
    Key("cpu-cores", integer(1, 1024), "integer 1-1024 or N/A"),
    Key("local-reserve-file-count", integer(0), "integer >= 0, 0 = no limit (default 0)"),
    Key("new-disaster-recovery-suppressed-time-windows", windows,
         "HH:MM-HH:MM[,HH:MM-HH:MM...], may cross midnight, or N/A",
         field_name="suppressed_windows"),
    Key("ssh-port", _PORT, "integer 1-65535 (default 22)"),
    Key("ssh-key-file", absolute_path, _ABS),
    Key("known-hosts-file", absolute_path, _ABS),
    Key("publication-list", absolute_path, f"{_ABS} or N/A"),
    Key("transport", choice({"ssh": "ssh", "local": "local"}), "ssh or local (default ssh)"),
    Key("bandwidth-limit", parse_size_per_second, "rate like 50MB/s or 100MiB/s, or N/A"),
    Key("api-listen", host, f"{_HOST} (default 127.0.0.1)"),
    Key("api-token-file", absolute_path, f"{_ABS} or N/A"),
    Key("rpo-target", duration(None, timedelta(seconds=1)), "duration >= 1s with unit, or N/A"),
    Key("barrier-grace", duration("s", timedelta(0), timedelta(seconds=60)),
         "duration 0s-60s (bare number = seconds, default 1s)"),
    Key("remote-drsync-command", command, "a command line, e.g. /opt/drsync/bin/drsync (default drsync)"),
    Key("remote-config-file", absolute_path, f"{_ABS} of backupRestore.ini on the standby, or N/A"),
    Key("warehouse-layout", choice({"dws": "dws", "hive": "hive"}),
         "dws (<db>/<schema>/<table>, default) or hive (Spark's <db>.db/<table>)"),
    Key("desync-guard", percentage, "percentage 0%-100% (default 20%) or N/A"),
    Key("verify-interval", duration(None, timedelta(seconds=10)),
         "duration >= 10s with unit (default 24h), or N/A (no continuous verification)"),
    Key("replication-mode", choice({"scheduled": "scheduled", "continuous": "continuous"}),
         "scheduled (a round every backup-exec-time-interval, default) or continuous (a round as soon "
         "as a commit lands)"),
    Key("continuous-min-interval", duration(None, timedelta(milliseconds=200)),
         "duration >= 200ms with unit, e.g. 500ms or 1s (default 1s)"),
    Key("primary-iceberg-catalog", sqlalchemy_url,
         "SQLAlchemy URL of a pyiceberg SQL catalog (e.g. sqlite:////srv/cat.db), or N/A"),
    Key("standby-iceberg-catalog", sqlalchemy_url,
         "SQLAlchemy URL of a pyiceberg SQL catalog (e.g. sqlite:////srv/cat.db), or N/A"),
    Key("iceberg-catalog-name", catalog_name, "a catalog name (default default)"),
)
# Keys whose N/A means "off" (None), not "the default".
NONE_WHEN_NOT_SET = frozenset({"desync-guard", "verify-interval"})
KEY_BY_NAME = {key.name: key for key in KEYS}
KNOWN_KEYS = tuple(KEY_BY_NAME)
NOT_SET = ("", "n/a")  # compared lower-case: 'N/A' (the DWS tool's spelling) or empty

# Without these the primary cannot reach the standby over SSH (strict host-key checking).
SSH_REQUIRED = {
    "primary-host-ip": "host or IP of the primary, as the standby reaches it",
    "restore-host-ip": "host or IP of the standby, as the primary reaches it",
    "username": "OS user drsync runs as and logs in as on the other host",
    "ssh-key-file": "absolute path of the SSH private key",
    "known-hosts-file": "absolute path of the known_hosts file checked strictly",
}
# Each of these directories is owned by one role; nesting them would let one side's cleanup
# or restore touch the other's files, so they must be distinct and disjoint.
DISJOINT_PATHS = (
    "primary-warehouse", "standby-warehouse",
    "primary-media-destination", "primary-metadata-destination",
    "restore-media-destination", "restore-metadata-destination",
)
SIDE = {name: "primary" if name.startswith("primary-") else "standby" for name in DISJOINT_PATHS}

