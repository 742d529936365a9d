"""The DWS tool's list files: `pub.list` (publications a round uses) and the object list of
`cancel-publication`. One entry per line, `#` starts a comment, blank lines are ignored.

Any input either parses or raises one ConfigError naming `file:line` (never another error):
the hypothesis tests in tests/unit/test_publist.py hold this.
"""

from __future__ import annotations

from pathlib import Path

from drsync.errors import ConfigError, DrsyncError
from drsync.publications.store import ALL_DATABASES, check_component


def _lines(path: Path) -> list[tuple[int, str]]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text") from None
    out = []
    for n, raw_line in enumerate(text.split("\n"), start=1):
        entry = raw_line.split("#", 1)[0].strip()
        if entry:
            out.append((n, entry))
    return out


def _parts(path: Path, n: int, entry: str, counts: tuple[int, ...], shape: str) -> list[str]:
    where = f"{path}:{n}"
    if entry.startswith("/") or any(c in entry for c in "/\\\0"):
        raise ConfigError(f"{where}: {entry!r} is not a name ({shape}); paths are refused")
    pieces = entry.split(".")
    if len(pieces) not in counts:
        raise ConfigError(f"{where}: {entry!r} is not {shape}")
    try:
        return [p if (i == 0 and p == ALL_DATABASES and shape.startswith("db.pub"))
                else check_component(p, "name", where) for i, p in enumerate(pieces)]
    except DrsyncError as e:
        raise ConfigError(e.message) from None


def parse_pub_list(path: Path) -> list[str]:
    """`db.pubname` per line (`*.name` for an all-databases publication); keys in file order."""
    keys: list[str] = []
    for n, entry in _lines(path):
        db, name = _parts(path, n, entry, (2,), "db.pubname")
        if f"{db}.{name}" not in keys:
            keys.append(f"{db}.{name}")
    return keys


def parse_object_list(path: Path) -> list[str]:
    """`db.schema.table` or `db.schema` per line; names in file order, duplicates once."""
    names: list[str] = []
    for n, entry in _lines(path):
        name = ".".join(_parts(path, n, entry, (2, 3), "db.schema.table or db.schema"))
        if name not in names:
            names.append(name)
    return names
