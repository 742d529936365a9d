"""Logging of every drsync process: the CLI, the daemon and the SSH agent — one setup.

Level from primary-/standby-cluster-logging-level, a rotating file `<metadata>/logs/drsync.log`
(backupCount = log-file-count) plus stderr (journald picks stderr up under systemd). Calling
`setup_logging` again (SIGHUP) replaces the handlers it installed, so a new level or count
takes effect without duplicating lines. Every record passes a redaction filter: a bearer
token must never reach a log, even if some library logs a request header.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from pathlib import Path

from drsync.config import Role, Settings
from drsync.fsutil import ensure_dir
from drsync.site.layout import MetadataLayout

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_MAX_BYTES = 10 * 1024 * 1024
_OURS = "_drsync_handler"  # attribute marking the handlers installed here

_SECRET = re.compile(r"(?i)\b((?:authorization[\"']?\s*[:=]\s*[\"']?)?(?:bearer|basic)\s+"
                     r"|(?:authorization|token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+")


def redact(text: str) -> str:
    """`Bearer abc` -> `Bearer ***` (also `token=...`, `authorization: ...`)."""
    return _SECRET.sub(lambda m: m[1] + "***", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class NotFileOnly(logging.Filter):
    """On stderr, drop records logged with `extra={"file_only": True}`: a one-shot run's
    outcome line, which the CLI already prints on stdout but the log file must keep."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "file_only", False)


def level_of(settings: Settings, role: Role) -> int:
    name = (settings.primary_cluster_logging_level if role == "primary"
            else settings.standby_cluster_logging_level)
    return logging.CRITICAL if name == "FATAL" else logging.getLevelNamesMapping()[name]


def log_file(settings: Settings, role: Role) -> Path:
    return MetadataLayout(settings.metadata_dir(role)).log_file


def setup_logging(settings: Settings, role: Role, *, to_file: bool = True) -> Path | None:
    """Install (or replace) drsync's handlers on the root logger; returns the log file."""
    path = log_file(settings, role) if to_file else None
    _install(level_of(settings, role), path, settings.log_file_count)
    return path


def setup_stderr_logging(level_name: str = "WARNING") -> None:
    """Before a configuration is loaded (or where there is none: the agent): stderr only,
    with the same format and redaction."""
    level = logging.CRITICAL if level_name == "FATAL" else logging.getLevelNamesMapping()[level_name]
    _install(level, None, 0)


def _install(level: int, path: Path | None, backup_count: int) -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter(LOG_FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers[0].addFilter(NotFileOnly())
    if path is not None:
        ensure_dir(path.parent)
        handlers.append(logging.handlers.RotatingFileHandler(
            path, maxBytes=LOG_MAX_BYTES, backupCount=backup_count, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(RedactSecrets())
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    root.setLevel(level)
    # Libraries narrate at INFO (connections, job submissions); their warnings still show.
    for noisy in ("paramiko", "apscheduler", "uvicorn", "uvicorn.error", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
