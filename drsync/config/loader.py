"""Loading backupRestore.ini: text -> typed, validated `Settings`.

The file keeps the keys and meanings of the DWS backup tool (docs/dws-migration.md) plus the few
drsync adds. It is validated completely before anything starts: every problem becomes one line
`<file>:<line>: <key>: <what is wrong>; allowed: <...>` and all of them are raised together in
one ConfigError, so an operator fixes the whole file in one edit instead of one restart per typo.

Ranges live in the key table (keys.py) and cross-field rules here, not in the pydantic model:
only this layer knows file names and line numbers. The model is the typed result with defaults.
"""

from __future__ import annotations

import difflib
from itertools import permutations
from pathlib import Path

from pydantic import ValidationError

from drsync.config.keys import (
    DISJOINT_PATHS,
    KEY_BY_NAME,
    KEYS,
    NONE_WHEN_NOT_SET,
    NOT_SET,
    SIDE,
    SSH_REQUIRED,
    Key,
)
from drsync.config.model import Settings
from drsync.errors import ConfigError

HINT = "fix every line listed; each key is described in etc/backupRestore.ini.example"
SSH_HINT = "or set transport=local for a single-host setup"


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
    settings = parse_settings_text(text, str(path))
    from drsync.tableformat import formats  # table formats take their settings (Iceberg catalogs)

    for fmt in formats():
        fmt.configure(settings)
    return settings


def parse_settings_text(text: str, source: str) -> Settings:
    """Validate backupRestore.ini text; `source` names the file in messages."""
    problems: list[tuple[int, str]] = []  # (line, message); line 0 = about the whole file
    given: dict[str, tuple[Key, int]] = {}  # field -> key spelling and line that set it
    values: dict[str, object] = {}  # field -> parsed value, only for valid, set values
    failed: set[str] = set()  # fields with a problem already reported on their line

    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if is_ignored(stripped):
            continue
        name, equals, raw = stripped.partition("=")
        name, raw = name.strip(), raw.strip()
        where = f"{source}:{number}"
        if not equals or not name:
            problems.append((number, f"{where}: not a 'key=value' line: {stripped!r}"))
            continue
        key = KEY_BY_NAME.get(name)
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
        if raw.lower() in NOT_SET:
            if key.name in NONE_WHEN_NOT_SET:
                values[key.field] = None
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


def is_ignored(stripped: str) -> bool:
    """Blank lines, '#' and ';' comments, and '[section]' headers carry no setting."""
    is_section = stripped.startswith("[") and stripped.endswith("]")
    return not stripped or stripped[0] in "#;" or is_section


def _unknown_key_message(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), list(KEY_BY_NAME), n=1, cutoff=0.6)
    if close:
        return f"unknown key {name!r} — did you mean {close[0]!r}?"
    return f"unknown key {name!r}; allowed: the keys of etc/backupRestore.ini.example"


def _missing_keys(source: str, given: dict[str, tuple[Key, int]], values: dict[str, object],
                  failed: set[str]) -> list[tuple[int, str]]:
    problems = [
        (0, f"{source}: missing required key {key.name!r} ({key.required_because})")
        for key in KEYS
        if key.required_because and key.field not in given
    ]
    # An invalid transport already has its own line; guessing 'ssh' would only add noise.
    if "transport" not in failed and values.get("transport", "ssh") == "ssh":
        for name, about in SSH_REQUIRED.items():
            field = KEY_BY_NAME[name].field
            if field not in values and field not in failed:
                problems.append((0, f"{source}: missing required key {name!r} ({about}) with "
                                    f"transport=ssh — {SSH_HINT}"))
    return problems


def _overlapping_paths(source: str, given: dict[str, tuple[Key, int]],
                       values: dict[str, object]) -> list[tuple[int, str]]:
    placed = [(name, given[field][1], path) for name in DISJOINT_PATHS
              if isinstance(path := values.get(field := KEY_BY_NAME[name].field), Path)]
    problems = []
    # With transport=ssh each side's paths are on its own host: only a side's own paths must
    # be disjoint, and a primary path may well equal a standby path (same layout on both).
    same_host = values.get("transport") == "local"
    for (name, line, path), (other, other_line, other_path) in permutations(placed, 2):
        if not same_host and SIDE[name] != SIDE[other]:
            continue
        if path == other_path and line < other_line:
            continue  # an identical pair is met twice: report it once, on the later line
        if path.is_relative_to(other_path):
            relation = "the same path as" if path == other_path else "inside"
            problems.append((line, f"{source}:{line}: {name}: {path} is {relation} {other} "
                                   f"(line {other_line}); allowed: the warehouses and the media/"
                                   f"metadata destinations are distinct, none inside another"))
    return problems

