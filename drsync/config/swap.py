"""sw_backupRestore.ini: the same file with the two sides' keys swapped (`drsync config swap`)."""

from __future__ import annotations

import re

from drsync.config.loader import is_ignored

SWAP_PAIRS = (
    ("primary-host-ip", "restore-host-ip"),
    ("backup-port", "restore-port"),
    ("primary-media-destination", "restore-media-destination"),
    ("primary-metadata-destination", "restore-metadata-destination"),
    ("primary-cluster-id", "standby-cluster-id"),
    ("primary-warehouse", "standby-warehouse"),
    ("primary-iceberg-catalog", "standby-iceberg-catalog"),
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
    if is_ignored(line.strip()):
        return None
    match = _ASSIGNMENT.fullmatch(line)
    return match if match is not None and match["key"].strip() in _PARTNER else None


def _with_value(match: re.Match[str], value: str) -> str:
    return match.string[: match.start("value")] + value + match["cr"]
