"""Object names and where they live: the one place names are parsed, quoted and mapped to paths.

A table is named by its directory names joined with '.': `db.schema.table` in the `dws`
warehouse layout (`<db>/<schema>/<table>/`), `db.table` in the `hive` layout Spark writes
(`<db>.db/<table>/`, the `default` database's tables directly under the root). A name part
holding a character outside `A-Z a-z 0-9 _$@+=~-` is written in backticks, a backtick inside
doubled, as Spark SQL quotes identifiers: ``db.`delta-0.8.0`.t``. Every name drsync prints or
stores is in that canonical form (`format_name`), and every name it reads goes through
`parse_name`, so the CLI, publications, pub.list and object-list files, manifests and state
all agree. Parts that need no quoting print as before, so existing state keeps its keys.

A name alone says its layout (3 parts: dws, 2 parts: hive), so a name maps to its directory
without the configuration: `relpath_of`.

Kept free of heavy imports (the agent imports manifest.py, which uses this module).
"""

from __future__ import annotations

import re

from drsync.errors import ConfigError, UnsafePathError

DEFAULT_DB = "default"  # Spark's database whose tables sit directly under the warehouse root
HIVE_DB_SUFFIX = ".db"
_PLAIN = re.compile(r"[A-Za-z0-9_$@+=~-]+")
MAX_PART_BYTES = 255  # one directory name
# A table name of 2 or 3 plain parts, none starting with '_': every check of `parse_name` and
# `check_part` passes for it and it is canonical as it is (plain parts are never quoted; ASCII,
# so 255 characters are 255 bytes). One regex match instead of a parse per name: the standby
# checks every name of a barrier map (1,000s) each round. Anything else takes the full parse.
PLAIN_TABLE_NAME = re.compile(r"(?:[A-Za-z0-9$@+=~-][A-Za-z0-9_$@+=~-]{0,254}\.){1,2}"
                              r"[A-Za-z0-9$@+=~-][A-Za-z0-9_$@+=~-]{0,254}")


def quote_part(part: str) -> str:
    return part if _PLAIN.fullmatch(part) else "`" + part.replace("`", "``") + "`"


def format_name(parts: tuple[str, ...] | list[str]) -> str:
    """The canonical name of these parts: joined with '.', each quoted where needed."""
    return ".".join(quote_part(p) for p in parts)


def check_part(part: str, what: str, where: str = "", *, leading_underscore: bool = False) -> str:
    """A name part is any directory name drsync may create: not empty, no '/', '\\', NUL or
    control character, not '.'/'..', at most 255 bytes, and not starting with '.' or '_'
    (hidden and drsync's own directories never hold tables; a publication name may start
    with '_', as the DWS documentation's `_pub_for_fine_dr` does)."""
    loc = f"{where}: " if where else ""
    if part in ("", ".", "..") or any(c in part for c in "/\\\0"):
        raise UnsafePathError(f"{loc}{what} {part!r} is not a plain name (path tricks are refused)")
    if any(ord(c) < 32 or ord(c) == 127 for c in part):
        raise ConfigError(f"{loc}{what} {part!r} contains a control character")
    if part.startswith(".") or (part.startswith("_") and not leading_underscore):
        raise ConfigError(f"{loc}{what} {part!r} starts with {part[0]!r}: such directories are hidden "
                          "or drsync's own, never tables")
    if part != part.strip():
        raise ConfigError(f"{loc}{what} {part!r} starts or ends with white space")
    if len(part.encode("utf-8")) > MAX_PART_BYTES:
        raise ConfigError(f"{loc}{what} {part[:40]!r}...: longer than {MAX_PART_BYTES} bytes")
    return part


def parse_name(text: str, what: str = "name", where: str = "",
               counts: tuple[int, ...] = (1, 2, 3), shape: str = "") -> list[str]:
    """`a.b.c`, with parts in backticks where they hold '.', into checked parts."""
    loc = f"{where}: " if where else ""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == "`":
            buf, i = [], i + 1
            while True:
                j = text.find("`", i)
                if j < 0:
                    raise ConfigError(f"{loc}{what} {text!r}: a backtick is not closed",
                                      hint="quote a part as `a.b`; a backtick inside is written ``")
                buf.append(text[i:j])
                if j + 1 < n and text[j + 1] == "`":
                    buf.append("`")
                    i = j + 2
                    continue
                i = j + 1
                break
            parts.append("".join(buf))
        else:
            j = text.find(".", i)
            j = n if j < 0 else j
            piece = text[i:j]
            if piece and not _PLAIN.fullmatch(piece) and piece not in (".", ".."):
                check_part(piece, what, where)  # path tricks first: they get their own error
                raise ConfigError(f"{loc}{what} {text!r}: the part {piece!r} must be written in backticks",
                                  hint=f"write {quote_part(piece)} (any character but letters, digits "
                                  "and _$@+=~- needs them; a backtick inside is doubled)")
            parts.append(piece)
            i = j
        if i == n:
            break
        if text[i] != ".":
            raise ConfigError(f"{loc}{what} {text!r}: expected '.' after a quoted part")
        i += 1
        if i == n:
            parts.append("")
            break
    for p in parts:
        check_part(p, what, where)
    if len(parts) not in counts:
        shapes = {1: "one name", 2: "a.b", 3: "a.b.c"}
        shape = shape or " or ".join(shapes[c] for c in counts)
        raise ConfigError(f"{loc}{what} {text!r} is not {shape}",
                          hint="a part holding '.' is written in backticks: db.`delta-0.8.0`.t")
    return parts


def split_names(text: str) -> list[str]:
    """A comma-separated list of names (`--table a.b,c.d`); commas inside backticks stay."""
    out: list[str] = []
    buf: list[str] = []
    quoted = False
    for c in text:
        if c == "`":
            quoted = not quoted  # a doubled backtick flips twice: still inside
        if c == "," and not quoted:
            out.append("".join(buf).strip())
            buf = []
        else:
            buf.append(c)
    out.append("".join(buf).strip())
    return [v for v in out if v]


def canonical(text: str, what: str = "name", where: str = "", counts: tuple[int, ...] = (1, 2, 3)) -> str:
    return format_name(parse_name(text, what, where, counts))


def relpath_parts(parts: tuple[str, ...] | list[str]) -> list[str]:
    """Directories of a table below the warehouse root, by its name parts: dws
    `db.schema.table` -> db/schema/table; hive `db.table` -> db.db/table, or table alone for
    the default database."""
    if len(parts) == 2:  # hive: db.table
        db, table = parts
        return [table] if db == DEFAULT_DB else [db + HIVE_DB_SUFFIX, table]
    return list(parts)


def relpath_of(name: str) -> str:
    """`db.schema.table` (dws) or `db.table` (hive) -> its directory below the warehouse root."""
    return "/".join(relpath_parts(parse_name(name, "table", counts=(2, 3))))
