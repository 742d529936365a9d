"""The audit log of role commands: `<metadata>/audit.log`, one JSON object per line.

Who (the login behind sudo if any), when, which command, from which config, the outcome and
the role epoch afterwards. Appended and fsynced; never rewritten, and kept by set-independent.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
from pathlib import Path
from typing import Any

from drsync.config import Settings
from drsync.errors import DrsyncError
from drsync.roles.epoch import read_role
from drsync.site.state import local_time

AUDIT_FILE = "audit.log"


def who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (as {user})" if sudo and sudo != user else user


def record(metas: list[Path], command: str, config: Path, outcome: str, epoch: int,
           detail: str = "") -> None:
    """Append one entry to the audit log of each metadata directory this host can reach (one
    that does not exist here is the other host's, over SSH: not created)."""
    entry = {"time": local_time(), "who": who(), "command": command, "config": str(config),
             "outcome": outcome, "epoch": epoch, "detail": detail[:2000]}
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
    for meta in dict.fromkeys(metas):  # same directory once
        if not meta.is_dir():
            continue
        with contextlib.suppress(OSError):  # an unreachable side must not hide the outcome
            fd = os.open(meta / AUDIT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)


def failed(settings: Settings, command: str, config: Path, error: DrsyncError) -> None:
    """A role command that failed is audited too, with its error."""
    metas = [settings.primary_metadata_destination, settings.restore_metadata_destination]
    epoch = max(read_role(m).epoch for m in metas)
    record(metas, command, config, f"failed: {error.message}", epoch)


def read_audit(meta: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with contextlib.suppress(FileNotFoundError):
        for raw in (meta / AUDIT_FILE).read_text().splitlines():
            with contextlib.suppress(ValueError):
                obj = json.loads(raw)
                if isinstance(obj, dict):
                    out.append(obj)
    return out


def last_entry(metas: list[Path]) -> dict[str, Any] | None:
    entries = [e for m in dict.fromkeys(metas) for e in read_audit(m)]
    return max(entries, key=lambda e: str(e.get("time", ""))) if entries else None
