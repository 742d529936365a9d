"""Error types with stable codes.

Every error drsync raises on purpose is a `DrsyncError`: it carries a stable `code` (shown as
`errorCode` in show-progress and used by scripts), a one-line human message that names the
object (file, key, table) and, where we know it, a `hint` saying what to do. The CLI prints
`error: <message>` (+ `hint: ...`) and exits with `exit_code`; it never prints a traceback for
these.
"""

from __future__ import annotations


class DrsyncError(Exception):
    """Base class: a failure we understand and can explain in one line."""

    code = "DRS000"
    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(DrsyncError):
    """The configuration file is missing or invalid. Nothing was started."""

    code = "DRS100"
    exit_code = 2


class DwsUsageError(DrsyncError):
    """A command line in the DWS tool's form (`drsync -t ...`) that drsync cannot run as written."""

    code = "DRS102"
    exit_code = 2


class LockBusyError(DrsyncError):
    """Another drsync process holds the lock of this operation."""

    code = "DRS110"


class TableFormatError(DrsyncError):
    """A table cannot be copied faithfully (absolute paths, unparseable log, ...)."""

    code = "DRS200"


class UnsafePathError(TableFormatError):
    """A path in a Delta log or a manifest would leave the table directory."""

    code = "DRS201"


class ManifestError(DrsyncError):
    """A manifest is unreadable, of an unknown format version or for another cluster pair."""

    code = "DRS300"


class ChainError(DrsyncError):
    """Sets cannot be applied in order: a prior set is missing."""

    code = "DRS310"


class IntegrityError(DrsyncError):
    """A file or bundle does not match its recorded size or hash."""

    code = "DRS320"


class TransportError(DrsyncError):
    """Moving bytes to the other site failed (possibly transient)."""

    code = "DRS400"


class StandbyConflictError(DrsyncError):
    """A replicated table on the standby was changed locally; drsync will not overwrite it."""

    code = "DRS500"


class StoppedError(DrsyncError):
    """An operator asked this operation to stop; it stopped at a step boundary."""

    code = "DRS600"


class StoppedByIntentError(StoppedError):
    """A one-shot `backup`/`restore` found stop-backup/stop-restore recorded: nothing done.
    Exit 4, so a cron line or script sees that replication is paused (not failed, not done)."""

    code = "DRS601"
    exit_code = 4


class HostKeyError(TransportError):
    """The other host's key is unknown or changed: refused, never retried."""

    code = "DRS410"


class AuthError(TransportError):
    """The other host refused our key: refused, never retried."""

    code = "DRS411"


class RoleError(DrsyncError):
    """A role change cannot proceed, or a call comes from an older role epoch (split brain)."""

    code = "DRS700"


class DiskFullError(DrsyncError):
    """A local filesystem ran out of space (ENOSPC/EDQUOT): nothing was committed; the round
    or restore runs again unchanged once space returns (not a corrupt input)."""

    code = "DRS800"


class TableRecreatedError(TableFormatError):
    """A table was dropped and re-created under the same name on the primary: the round
    forgets what the standby holds of it and ships it again in full, as a replacement."""

    code = "DRS202"


class DrillError(DrsyncError):
    """A drill (a writable fork of the standby at a barrier) cannot be made, listed or dropped."""

    code = "DRS900"


NO_SPACE_ERRNOS = (28, 122)  # ENOSPC, EDQUOT


def disk_full(e: OSError, what: str) -> DiskFullError | None:
    """`e` as a DiskFullError naming `what` was being written, or None if it is another error."""
    if e.errno not in NO_SPACE_ERRNOS:
        return None
    return DiskFullError(f"disk full while writing {what}: {e.strerror} ({e.filename or what})",
                         hint="free space there (or give it a larger filesystem), then run again")
