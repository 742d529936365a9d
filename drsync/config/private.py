"""Secrets drsync reads (ssh-key-file, api-token-file) must be private to their owner, as
ssh itself insists for a private key: a key or token readable by group or others is refused
with the chmod that fixes it, rather than used (docs/security.md)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from drsync.errors import ConfigError


def check_private_file(path: Path, key: str) -> None:
    """Raise ConfigError when `path` (the value of config `key`) grants group or others any
    access. A missing file passes: its use reports that in its own words."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    except OSError as e:
        raise ConfigError(f"{key} {path}: {e.strerror or e}") from None
    if mode & 0o077:
        raise ConfigError(
            f"{key} {path} is accessible by group or others (mode {mode:04o}); refused",
            hint=f"chmod 600 {path}")
