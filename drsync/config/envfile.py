"""primary-env / standby-env: a `KEY=VALUE` file loaded into the environment before a drsync
command runs on that side (the DWS tool sources its env file the same way).

Lines: `KEY=VALUE` or `export KEY=VALUE`, `#` comments and blank lines ignored, a value may be
in single or double quotes (no expansion: `$HOME` stays literal, so a file means the same under
cron, systemd and a shell). A missing file or a malformed line is a ConfigError naming
`file:line`: a key accepted and then silently ignored would be worse.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from drsync.config import Role, Settings
from drsync.errors import ConfigError

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def parse_env_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the environment file ({getattr(e, 'strerror', None) or e})",
                          hint="fix the primary-env / standby-env key, or set it to N/A") from None
    values: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ConfigError(f"{path}:{n}: {line[:60]!r} is not KEY=VALUE",
                              hint="lines are KEY=VALUE or export KEY=VALUE; # starts a comment")
        key, value = match[1], match[2].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def load_side_env(settings: Settings, side: Role) -> dict[str, str]:
    """Load this side's env file (if the key is set) into os.environ; returns what it set."""
    path = settings.primary_env if side == "primary" else settings.standby_env
    if path is None:
        return {}
    values = parse_env_file(path)
    os.environ.update(values)
    return values
