"""The DWS tool's list files: `pub.list` (publications a round uses) and the object list of
`cancel-publication`. One entry per line, `#` starts a comment, blank lines are ignored.

Any input either parses or raises one ConfigError naming `file:line` (never another error):
the hypothesis tests in tests/unit/test_publist.py hold this.
"""

from __future__ import annotations

from pathlib import Path

from drsync.errors import ConfigError, DrsyncError
from drsync.publications.store import ALL_DATABASES, check_publication_name
from drsync.site.names import canonical, format_name, parse_name


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
    if entry.startswith("/"):
        raise ConfigError(f"{where}: {entry!r} is not a name ({shape}); paths are refused")
    try:
        if shape.startswith("db.pub"):  # db.pubname: `*` = all databases; the name is a publication's
            db, _, name = entry.rpartition(".")
            if db != ALL_DATABASES:
                db = canonical(db, "database", where, counts=(1,))
            return [db, check_publication_name(name, where)]
        return parse_name(entry, "name", where, counts)
    except DrsyncError as e:
        raise ConfigError(e.message if e.message.startswith(where) else f"{where}: {e.message}") from None


def parse_pub_list(path: Path) -> list[str]:
    """`db.pubname` per line (`*.name` for an all-databases publication); keys in file order."""
    keys: list[str] = []
    for n, entry in _lines(path):
        db, name = _parts(path, n, entry, (2,), "db.pubname")
        if f"{db}.{name}" not in keys:
            keys.append(f"{db}.{name}")
    return keys


def parse_object_list(path: Path, hive: bool = False) -> list[str]:
    """`db.schema.table` or `db.schema` per line (hive layout: `db.table`), in canonical form
    (names.py), in file order, duplicates once.

    A file with malformed lines cancels nothing: one ConfigError lists every bad line
    (`file:line: ...`, one per line), so a typo never leaves a half-applied cancellation."""
    names: list[str] = []
    bad: list[str] = []
    counts, shape = ((2,), "db.table") if hive else ((2, 3), "db.schema.table or db.schema")
    for n, entry in _lines(path):
        try:
            name = format_name(_parts(path, n, entry, counts, shape))
        except ConfigError as e:
            bad.append(e.message)
            continue
        if name not in names:
            names.append(name)
    if bad:
        raise ConfigError("\n".join(bad), hint=f"fix the {len(bad)} line(s) above and run again: "
                          "nothing was cancelled")
    return names
