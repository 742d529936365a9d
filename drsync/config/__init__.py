"""backupRestore.ini -> typed, validated `Settings`.

model.py   the Settings model (typed result, defaults)
values.py  value parsers (durations, rates, hosts, windows...)
keys.py    the key table: every key, its parser, what it allows
loader.py  reading and validating a file: every problem, one line each, all at once
swap.py    sw_backupRestore.ini
"""

from drsync.config.keys import KNOWN_KEYS
from drsync.config.loader import load_settings, parse_settings_text
from drsync.config.model import LogLevel, Role, Settings
from drsync.config.swap import SWAP_PAIRS, swap_config_text
from drsync.config.values import parse_duration, parse_size_per_second

__all__ = [
    "KNOWN_KEYS", "SWAP_PAIRS", "LogLevel", "Role", "Settings", "load_settings", "parse_duration",
    "parse_settings_text", "parse_size_per_second", "swap_config_text",
]
