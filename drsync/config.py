"""backupRestore.ini -> typed, validated `Settings`.

The file keeps the keys and meanings of the DWS backup tool (shared/spec/config.md) plus the few
drsync adds. It is validated completely before anything starts: every problem becomes one line
`<file>:<line>: <key>: <what is wrong>; allowed: <...>` and all of them are raised together in
one ConfigError, so an operator fixes the whole file in one edit instead of one restart per typo.

Ranges and cross-field rules live here, in the key table, not in the pydantic model: only this
layer knows file names and line numbers. The model is the typed result and holds the defaults.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time, timedelta
from decimal import Decimal
from itertools import permutations
from pathlib import Path
from typing import Literal, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationError

from drsync.errors import ConfigError

Role = Literal["primary", "standby"]
LogLevel = Literal["FATAL", "ERROR", "WARNING", "INFO", "DEBUG"]

HINT = "fix every line listed; each key is described in etc/backupRestore.ini.example"
SSH_HINT = "or set transport=local for a single-host setup"


class Settings(BaseModel):
    """The validated configuration. Build it with `load_settings` / `parse_settings_text`:
    constructing it directly (tests) checks types only, not ranges or cross-field rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_file: Path
    life_cycle: timedelta = timedelta(days=7)
    backuprestoreinfo_file: str = "backuprestoreinfo.csv"
    username: str | None = None
    primary_env: Path | None = None
    standby_env: Path | None = None
    primary_warehouse: Path
    standby_warehouse: Path
    full_backup_exec_time_interval: timedelta | None = None  # None: only the first set is full
    backup_exec_time_interval: timedelta = timedelta(minutes=1)
    restore_interval: timedelta = timedelta(minutes=1)
    primary_host_ip: str | None = None
    restore_host_ip: str | None = None
    media_type: Literal["disk"] = "disk"
    parallel_process: int = 4
    compression_level: int = 1
    compression_type: Literal["zstd", "none"] = "zstd"
    primary_media_destination: Path
    primary_metadata_destination: Path
    restore_media_destination: Path
    restore_metadata_destination: Path
    backup_port: int | None = None
    restore_port: int | None = None
    primary_cluster_logging_level: LogLevel = "INFO"
    standby_cluster_logging_level: LogLevel = "INFO"
    log_file_count: int = 50
    check_balance_retry_times: int = 3
    primary_cluster_id: UUID | None = None
    standby_cluster_id: UUID | None = None
    desync_table_operation: Literal["none", "log-desync-table", "drop-desync-table"] = "none"
    cpu_cores: int | None = None
    local_reserve_file_count: int = 0  # 0: no limit
    suppressed_windows: tuple[tuple[time, time], ...] = ()
    ssh_port: int = 22
    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None
    publication_list: Path | None = None
    transport: Literal["ssh", "local"] = "ssh"
    bandwidth_limit: int | None = None  # bytes per second; None: unthrottled
    api_listen: str = "127.0.0.1"
    api_token_file: Path | None = None
    rpo_target: timedelta | None = None
    barrier_grace: timedelta = timedelta(seconds=1)
    remote_drsync_command: tuple[str, ...] = ("drsync",)
    remote_config_file: Path | None = None

    def in_suppressed_window(self, now: time) -> bool:
        """True if no new backup round may start at `now` (a window's end is exclusive)."""
        for start, end in self.suppressed_windows:
            if start < end:
                if start <= now < end:
                    return True
            elif now >= start or now < end:  # crosses midnight, e.g. 22:00-02:00
                return True
        return False

    def warehouse(self, role: Role) -> Path:
        return self.primary_warehouse if role == "primary" else self.standby_warehouse

    def media_dir(self, role: Role) -> Path:
        if role == "primary":
            return self.primary_media_destination
        return self.restore_media_destination

    def metadata_dir(self, role: Role) -> Path:
        if role == "primary":
            return self.primary_metadata_destination
        return self.restore_metadata_destination


# ---------------------------------------------------------------- value parsers (public ones)

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhdSMHD]?)")
_SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str, *, bare_unit: str | None) -> timedelta:
    """'30s', '10m', '2h', '7d' (also '1.5h'). A bare number is in `bare_unit`, or an error if
    that is None: for keys like life-cycle a bare '7' is too easy to misread."""
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise ConfigError(f"{value!r} is not a duration", hint="write e.g. 30s, 10m, 2h or 7d")
    number, unit = match[1], match[2].lower() or bare_unit
    if unit is None:
        raise ConfigError(
            f"bare number {value!r} needs a unit, e.g. '{number}d' or '{number}h'",
            hint="units: s (seconds), m (minutes), h (hours), d (days)",
        )
    try:
        return timedelta(seconds=float(number) * _SECONDS_PER_UNIT[unit])
    except OverflowError:
        raise ConfigError(f"{value!r} is too long a duration") from None


_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgtKMGT]i?)?B/s")
_MAX_RATE = 2**63 - 1


def parse_size_per_second(value: str) -> int:
    """'50MB/s', '512KB/s', '1GB/s' (powers of 1000), '100MiB/s' (powers of 1024) -> bytes/s.
    The B must be upper case: 'Mb/s' would be megabits, an 8x mistake we refuse to guess."""
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise ConfigError(f"{value!r} is not a rate", hint="write e.g. 50MB/s, 512KB/s or 100MiB/s")
    prefix = (match[2] or "").upper()
    base = 1024 if prefix.endswith("I") else 1000
    exponent = " KMGT".index(prefix[0]) if prefix else 0
    rate = Decimal(match[1]) * base**exponent
    if rate < 1:
        raise ConfigError(f"{value!r} is below 1 B/s", hint="use N/A for no limit")
    if rate > _MAX_RATE:
        raise ConfigError(f"{value!r} is too large a rate")
    return int(rate)


# ---------------------------------------------------------------- parsers used by the key table
# Each takes the stripped, set (not N/A) value and returns the typed value or raises ValueError
# (or ConfigError) with "what is wrong"; the key table supplies the "allowed" part.

Parser = Callable[[str], object]


def _integer(lowest: int, highest: int | None = None) -> Parser:
    def parse(value: str) -> int:
        if not re.fullmatch(r"[+-]?[0-9]+", value):
            raise ValueError(f"{value!r} is not a whole number")
        number = int(value)
        if number < lowest or (highest is not None and number > highest):
            raise ValueError(f"{number} is out of range")
        return number

    return parse


def _duration(bare_unit: str | None, lowest: timedelta, highest: timedelta | None = None) -> Parser:
    def parse(value: str) -> timedelta:
        duration = parse_duration(value, bare_unit=bare_unit)
        if duration < lowest or (highest is not None and duration > highest):
            raise ValueError(f"{value} is out of range")
        return duration

    return parse


def _choice(accepted: dict[str, str]) -> Parser:
    """Case-insensitive choice; `accepted` maps lower-case spellings to the stored value."""

    def parse(value: str) -> str:
        if value.lower() not in accepted:
            raise ValueError(f"{value!r} is not an accepted value")
        return accepted[value.lower()]

    return parse


def _absolute_path(value: str) -> Path:
    # No '~' expansion: the daemon often runs as another user (systemd), so '~' is ambiguous.
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path")
    return Path(os.path.normpath(value))


_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")


def _host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if len(value) <= 253 and _HOSTNAME.fullmatch(value) and not re.fullmatch(r"[0-9.]+", value):
        return value
    raise ValueError(f"{value!r} is not a host name or IP address")


def _username(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", value):
        raise ValueError(f"{value!r} is not a valid OS user name")
    return value


def _file_name(value: str) -> str:
    if "/" in value or "\0" in value or value in (".", ".."):
        raise ValueError(f"{value!r} is not a plain file name")
    return value


def _command(value: str) -> tuple[str, ...]:
    """A command line split like a shell would, but never run through one unquoted."""
    try:
        words = tuple(shlex.split(value))
    except ValueError as e:
        raise ValueError(f"{value!r} is not a valid command line ({e})") from None
    if not words:
        raise ValueError("empty command")
    return words


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a UUID") from None


_WINDOW = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})")


def _clock(hours: str, minutes: str, *, is_end: bool) -> time:
    if is_end and (hours, minutes) == ("24", "00"):
        return time(0, 0)  # '22:00-24:00' reads naturally; it is the window 22:00-00:00
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"{hours}:{minutes} is not a time of day")
    return time(int(hours), int(minutes))


def _windows(value: str) -> tuple[tuple[time, time], ...]:
    windows = []
    for part in (p.strip() for p in value.split(",")):
        match = _WINDOW.fullmatch(part)
        if match is None:
            raise ValueError(f"{part!r} is not a window HH:MM-HH:MM")
        start = _clock(match[1], match[2], is_end=False)
        end = _clock(match[3], match[4], is_end=True)
        if start == end:
            raise ValueError(f"window {part!r} starts and ends at the same time")
        windows.append((start, end))
    return tuple(windows)


# ---------------------------------------------------------------- the key table


@dataclass(frozen=True)
class _Key:
    name: str  # as written in the file
    parse: Parser
    allowed: str  # the "allowed: ..." part of its errors
    required_because: str = ""  # set for required keys: what the missing value is
    field_name: str = ""  # when the Settings field is not the key in snake_case

    @property
    def field(self) -> str:
        return self.field_name or self.name.replace("-", "_")


_ABS = "absolute path"
_PORT = _integer(1, 65535)
_HOST = "host name or IP address"
_LEVEL = _choice({level.lower(): level for level in get_args(LogLevel)})
_LEVELS = "FATAL, ERROR, WARNING, INFO, DEBUG (default INFO)"
_WORKERS = "integer 1-32 (default 4)"

_KEYS = (
    _Key("life-cycle", _duration(None, timedelta(0)), "duration with unit s/m/h/d (default 7d)"),
    _Key("backuprestoreinfo-file", _file_name, "a file name without '/'"),
    _Key("username", _username, "an OS user name"),
    _Key("primary-env", _absolute_path, f"{_ABS} or empty"),
    _Key("standby-env", _absolute_path, f"{_ABS} or empty"),
    _Key("primary-warehouse", _absolute_path, _ABS, "absolute path of the primary warehouse root"),
    _Key("standby-warehouse", _absolute_path, _ABS, "absolute path of the standby warehouse root"),
    _Key("full-backup-exec-time-interval", _duration("m", timedelta(seconds=1)),
         "duration >= 1s (bare number = minutes) or N/A"),
    _Key("backup-exec-time-interval", _duration("m", timedelta(seconds=10)),
         "duration >= 10s (bare number = minutes, default 1m)"),
    _Key("restore-interval", _duration("m", timedelta(seconds=1)),
         "duration >= 1s (bare number = minutes, default 1m)"),
    _Key("primary-host-ip", _host, _HOST),
    _Key("restore-host-ip", _host, _HOST),
    _Key("media-type", _choice({"disk": "disk"}), "disk (the only media type drsync has)"),
    # 'parrallel' is the DWS tool's spelling; the correct one is accepted too, but not both.
    _Key("parrallel-process", _integer(1, 32), _WORKERS, field_name="parallel_process"),
    _Key("parallel-process", _integer(1, 32), _WORKERS),
    _Key("compression-level", _integer(0, 9), "integer 0-9 (default 1)"),
    _Key("compression-type", _choice({"zstd": "zstd", "2": "zstd", "none": "none"}),
         "zstd (or 2, the DWS tool's code for it) or none"),
    _Key("primary-media-destination", _absolute_path, _ABS,
         "absolute path where bundles wait on the primary"),
    _Key("primary-metadata-destination", _absolute_path, _ABS,
         "absolute path of the primary's state, manifests and logs"),
    _Key("backup-port", _PORT, "integer 1-65535"),
    _Key("primary-cluster-logging-level", _LEVEL, _LEVELS),
    _Key("restore-media-destination", _absolute_path, _ABS,
         "absolute path of the bundle inbox on the standby"),
    _Key("restore-metadata-destination", _absolute_path, _ABS,
         "absolute path of the standby's state, manifests and logs"),
    _Key("restore-port", _PORT, "integer 1-65535"),
    _Key("standby-cluster-logging-level", _LEVEL, _LEVELS),
    _Key("log-file-count", _integer(5, 1024), "integer 5-1024 (default 50)"),
    _Key("check-balance-retry-times", _integer(0), "integer >= 0 (default 3)"),
    _Key("primary-cluster-id", _uuid, "UUID"),
    _Key("standby-cluster-id", _uuid, "UUID"),
    _Key("desync-table-operation",
         _choice({v: v for v in ("none", "log-desync-table", "drop-desync-table")}),
         "none, log-desync-table, drop-desync-table (default none)"),
    _Key("cpu-cores", _integer(1, 1024), "integer 1-1024 or N/A"),
    _Key("local-reserve-file-count", _integer(0), "integer >= 0, 0 = no limit (default 0)"),
    _Key("new-disaster-recovery-suppressed-time-windows", _windows,
         "HH:MM-HH:MM[,HH:MM-HH:MM...], may cross midnight, or N/A",
         field_name="suppressed_windows"),
    _Key("ssh-port", _PORT, "integer 1-65535 (default 22)"),
    _Key("ssh-key-file", _absolute_path, _ABS),
    _Key("known-hosts-file", _absolute_path, _ABS),
    _Key("publication-list", _absolute_path, f"{_ABS} or N/A"),
    _Key("transport", _choice({"ssh": "ssh", "local": "local"}), "ssh or local (default ssh)"),
    _Key("bandwidth-limit", parse_size_per_second, "rate like 50MB/s or 100MiB/s, or N/A"),
    _Key("api-listen", _host, f"{_HOST} (default 127.0.0.1)"),
    _Key("api-token-file", _absolute_path, f"{_ABS} or N/A"),
    _Key("rpo-target", _duration(None, timedelta(seconds=1)), "duration >= 1s with unit, or N/A"),
    _Key("barrier-grace", _duration("s", timedelta(0), timedelta(seconds=60)),
         "duration 0s-60s (bare number = seconds, default 1s)"),
    _Key("remote-drsync-command", _command, "a command line, e.g. /opt/drsync/bin/drsync (default drsync)"),
    _Key("remote-config-file", _absolute_path, f"{_ABS} of backupRestore.ini on the standby, or N/A"),
)
_KEY_BY_NAME = {key.name: key for key in _KEYS}
KNOWN_KEYS = tuple(_KEY_BY_NAME)
_NOT_SET = ("", "n/a")  # compared lower-case: 'N/A' (the DWS tool's spelling) or empty

# Without these the primary cannot reach the standby over SSH (strict host-key checking).
_SSH_REQUIRED = {
    "primary-host-ip": "host or IP of the primary, as the standby reaches it",
    "restore-host-ip": "host or IP of the standby, as the primary reaches it",
    "username": "OS user drsync runs as and logs in as on the other host",
    "ssh-key-file": "absolute path of the SSH private key",
    "known-hosts-file": "absolute path of the known_hosts file checked strictly",
}
# Each of these directories is owned by one role; nesting them would let one side's cleanup
# or restore touch the other's files, so they must be distinct and disjoint.
_DISJOINT_PATHS = (
    "primary-warehouse", "standby-warehouse",
    "primary-media-destination", "primary-metadata-destination",
    "restore-media-destination", "restore-metadata-destination",
)
_SIDE = {name: "primary" if name.startswith("primary-") else "standby" for name in _DISJOINT_PATHS}


# ---------------------------------------------------------------- loading


def load_settings(path: Path) -> Settings:
    """Read and validate backupRestore.ini; raises one ConfigError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate a BOM from Windows editors
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: configuration file not found",
            hint="copy etc/backupRestore.ini.example there and edit it, or pass -c PATH",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc}") from None
    return parse_settings_text(text, str(path))


def parse_settings_text(text: str, source: str) -> Settings:
    """Validate backupRestore.ini text; `source` names the file in messages."""
    problems: list[tuple[int, str]] = []  # (line, message); line 0 = about the whole file
    given: dict[str, tuple[_Key, int]] = {}  # field -> key spelling and line that set it
    values: dict[str, object] = {}  # field -> parsed value, only for valid, set values
    failed: set[str] = set()  # fields with a problem already reported on their line

    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if _is_ignored(stripped):
            continue
        name, equals, raw = stripped.partition("=")
        name, raw = name.strip(), raw.strip()
        where = f"{source}:{number}"
        if not equals or not name:
            problems.append((number, f"{where}: not a 'key=value' line: {stripped!r}"))
            continue
        key = _KEY_BY_NAME.get(name)
        if key is None:
            problems.append((number, f"{where}: {_unknown_key_message(name)}"))
            continue
        if key.field in given:
            first, first_line = given[key.field]
            again = "duplicate key" if first is key else f"same setting as '{first.name}'"
            problems.append((number, f"{where}: {name}: {again}, first set on line {first_line}; "
                                     f"allowed: one line per setting"))
            continue
        given[key.field] = (key, number)
        if raw.lower() in _NOT_SET:
            if key.required_because:
                failed.add(key.field)
                problems.append((number, f"{where}: {name}: is required and cannot be N/A or "
                                         f"empty; allowed: {key.allowed}"))
            continue
        try:
            values[key.field] = key.parse(raw)
        except (ValueError, OverflowError, ConfigError) as exc:
            failed.add(key.field)
            problems.append((number, f"{where}: {name}: {exc}; allowed: {key.allowed}"))

    problems += _missing_keys(source, given, values, failed)
    problems += _overlapping_paths(source, given, values)
    if problems:
        # Stable sort: problems in line order, whole-file ones (line 0) last.
        ordered = sorted(problems, key=lambda problem: problem[0] or len(text) + 1)
        raise ConfigError("\n".join(message for _, message in ordered), hint=HINT)
    try:
        return Settings.model_validate({"source_file": Path(source), **values})
    except ValidationError as exc:  # a bug in the key table; still report it the usual way
        lines = [f"{source}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines), hint=HINT) from None


def _is_ignored(stripped: str) -> bool:
    """Blank lines, '#' and ';' comments, and '[section]' headers carry no setting."""
    is_section = stripped.startswith("[") and stripped.endswith("]")
    return not stripped or stripped[0] in "#;" or is_section


def _unknown_key_message(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), list(_KEY_BY_NAME), n=1, cutoff=0.6)
    if close:
        return f"unknown key {name!r} — did you mean {close[0]!r}?"
    return f"unknown key {name!r}; allowed: the keys of etc/backupRestore.ini.example"


def _missing_keys(source: str, given: dict[str, tuple[_Key, int]], values: dict[str, object],
                  failed: set[str]) -> list[tuple[int, str]]:
    problems = [
        (0, f"{source}: missing required key {key.name!r} ({key.required_because})")
        for key in _KEYS
        if key.required_because and key.field not in given
    ]
    # An invalid transport already has its own line; guessing 'ssh' would only add noise.
    if "transport" not in failed and values.get("transport", "ssh") == "ssh":
        for name, about in _SSH_REQUIRED.items():
            field = _KEY_BY_NAME[name].field
            if field not in values and field not in failed:
                problems.append((0, f"{source}: missing required key {name!r} ({about}) with "
                                    f"transport=ssh — {SSH_HINT}"))
    return problems


def _overlapping_paths(source: str, given: dict[str, tuple[_Key, int]],
                       values: dict[str, object]) -> list[tuple[int, str]]:
    placed = [(name, given[field][1], path) for name in _DISJOINT_PATHS
              if isinstance(path := values.get(field := _KEY_BY_NAME[name].field), Path)]
    problems = []
    # With transport=ssh each side's paths are on its own host: only a side's own paths must
    # be disjoint, and a primary path may well equal a standby path (same layout on both).
    same_host = values.get("transport") == "local"
    for (name, line, path), (other, other_line, other_path) in permutations(placed, 2):
        if not same_host and _SIDE[name] != _SIDE[other]:
            continue
        if path == other_path and line < other_line:
            continue  # an identical pair is met twice: report it once, on the later line
        if path.is_relative_to(other_path):
            relation = "the same path as" if path == other_path else "inside"
            problems.append((line, f"{source}:{line}: {name}: {path} is {relation} {other} "
                                   f"(line {other_line}); allowed: the warehouses and the media/"
                                   f"metadata destinations are distinct, none inside another"))
    return problems


# ---------------------------------------------------------------- sw_backupRestore.ini

SWAP_PAIRS = (
    ("primary-host-ip", "restore-host-ip"),
    ("backup-port", "restore-port"),
    ("primary-media-destination", "restore-media-destination"),
    ("primary-metadata-destination", "restore-metadata-destination"),
    ("primary-cluster-id", "standby-cluster-id"),
    ("primary-warehouse", "standby-warehouse"),
)
_PARTNER = {a: b for a, b in SWAP_PAIRS} | {b: a for a, b in SWAP_PAIRS}
_ASSIGNMENT = re.compile(r"(?P<key>[^=]*)=(?P<value>.*?)(?P<cr>\r*)")  # line ends stay put


def swap_config_text(text: str) -> str:
    """The sw_backupRestore.ini text. When both keys of a pair appear once, their values are
    exchanged in place, so each line keeps the comment above it; otherwise (a partner absent or a
    key repeated) that pair's keys are renamed. Either way, swapping twice gives back the text."""
    lines = text.split("\n")
    found: dict[str, list[tuple[int, re.Match[str]]]] = {name: [] for name in _PARTNER}
    for index, line in enumerate(lines):
        if (match := _swappable(line)) is not None:
            found[match["key"].strip()].append((index, match))
    for name, partner in SWAP_PAIRS:
        if len(found[name]) == len(found[partner]) == 1:
            (index, match), (other_index, other) = found[name][0], found[partner][0]
            lines[index] = _with_value(match, other["value"])
            lines[other_index] = _with_value(other, match["value"])
            continue
        for index, match in found[name] + found[partner]:
            key = match["key"].strip()
            start, end = match.span("key")
            renamed = match["key"].replace(key, _PARTNER[key], 1)
            lines[index] = match.string[:start] + renamed + match.string[end:]
    return "\n".join(lines)


def _swappable(line: str) -> re.Match[str] | None:
    if _is_ignored(line.strip()):
        return None
    match = _ASSIGNMENT.fullmatch(line)
    return match if match is not None and match["key"].strip() in _PARTNER else None


def _with_value(match: re.Match[str], value: str) -> str:
    return match.string[: match.start("value")] + value + match["cr"]
