"""Value parsers of backupRestore.ini: each takes the stripped, set (not N/A) value and
returns the typed value or raises ValueError (or ConfigError) saying what is wrong; the key
table (`keys.py`) supplies the "allowed: ..." part of the message."""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from collections.abc import Callable
from datetime import time, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from drsync.errors import ConfigError

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([mM][sS]|[smhdSMHD]?)")
_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str, *, bare_unit: str | None) -> timedelta:
    """'30s', '10m', '2h', '7d' (also '1.5h', '500ms'). A bare number is in `bare_unit`, or an error if
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


Parser = Callable[[str], object]


def integer(lowest: int, highest: int | None = None) -> Parser:
    def parse(value: str) -> int:
        if not re.fullmatch(r"[+-]?[0-9]+", value):
            raise ValueError(f"{value!r} is not a whole number")
        number = int(value)
        if number < lowest or (highest is not None and number > highest):
            raise ValueError(f"{number} is out of range")
        return number

    return parse


def percentage(value: str) -> float:
    """`20%` (or `20`) as the share 0.2; 0-100."""
    number = value[:-1].strip() if value.endswith("%") else value
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", number):
        raise ValueError(f"{value!r} is not a percentage")
    share = float(number) / 100
    if share > 1:
        raise ValueError(f"{value} is out of range")
    return share


def duration(bare_unit: str | None, lowest: timedelta, highest: timedelta | None = None) -> Parser:
    def parse(value: str) -> timedelta:
        span = parse_duration(value, bare_unit=bare_unit)
        if span < lowest or (highest is not None and span > highest):
            raise ValueError(f"{value} is out of range")
        return span

    return parse


def choice(accepted: dict[str, str]) -> Parser:
    """Case-insensitive choice; `accepted` maps lower-case spellings to the stored value."""

    def parse(value: str) -> str:
        if value.lower() not in accepted:
            raise ValueError(f"{value!r} is not an accepted value")
        return accepted[value.lower()]

    return parse


def absolute_path(value: str) -> Path:
    # No '~' expansion: the daemon often runs as another user (systemd), so '~' is ambiguous.
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path")
    return Path(os.path.normpath(value))


_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")


def host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if len(value) <= 253 and _HOSTNAME.fullmatch(value) and not re.fullmatch(r"[0-9.]+", value):
        return value
    raise ValueError(f"{value!r} is not a host name or IP address")


def username(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", value):
        raise ValueError(f"{value!r} is not a valid OS user name")
    return value


def file_name(value: str) -> str:
    if "/" in value or "\0" in value or value in (".", ".."):
        raise ValueError(f"{value!r} is not a plain file name")
    return value


def command(value: str) -> tuple[str, ...]:
    """A command line split like a shell would, but never run through one unquoted."""
    try:
        words = tuple(shlex.split(value))
    except ValueError as e:
        raise ValueError(f"{value!r} is not a valid command line ({e})") from None
    if not words:
        raise ValueError("empty command")
    return words


def uuid_value(value: str) -> UUID:
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


def windows(value: str) -> tuple[tuple[time, time], ...]:
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




def sqlalchemy_url(value: str) -> str:
    """A SQLAlchemy database URL (`sqlite:////srv/cat.db`, `postgresql://host/db`)."""
    scheme, sep, rest = value.partition("://")
    if not sep or not scheme or not rest or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a database URL")
    if scheme.startswith("sqlite") and not rest.startswith("//"):  # sqlite:////abs/path
        raise ValueError(f"{value!r}: an SQLite catalog needs an absolute path (sqlite:////srv/cat.db)")
    return value


def catalog_name(value: str) -> str:
    if not value or len(value) > 255 or any(c.isspace() or c in "'\"" for c in value):
        raise ValueError(f"{value!r} is not a catalog name")
    return value
