"""Delta Lake, the first `TableFormat` (see drsync/tableformat/__init__.py).

Modules: `log` (listing `_delta_log`), `paths` (relative URIs, deletion vectors), `actions`
(commits: files added/removed, DDL events, table id, commit times), `checkpoints` (replay to
the files a version needs), `ddl` (events in words), `collect` (what a set ships), `format`
(`DeltaFormat`). The names below are re-exported for tests and benchmarks.
"""

from drsync.site.confine import safe_relpath
from drsync.tableformat.base import FileRef, TableFormat
from drsync.tableformat.delta.actions import (
    barrier_version,
    check_action,
    commit_time_ms,
    commit_timestamp_ms,
    ddl_events,
    files_added,
    files_removed,
    parse_commit_bytes,
    read_commit,
    table_id,
)
from drsync.tableformat.delta.checkpoints import (
    LiveFiles,
    Snapshot,
    checkpoint_sidecars,
    checkpoint_state,
    snapshot,
)
from drsync.tableformat.delta.format import DeltaFormat
from drsync.tableformat.delta.log import (
    LAST_CHECKPOINT,
    LOG_DIR,
    SIDECAR_DIR,
    Checkpoint,
    LogFile,
    LogListing,
    is_delta_table,
    list_log,
    log_version,
)
from drsync.tableformat.delta.paths import data_path, deletion_vector_path

FORMAT: TableFormat = DeltaFormat()  # found by drsync.tableformat.formats()

__all__ = [
    "FORMAT", "LAST_CHECKPOINT", "LOG_DIR", "SIDECAR_DIR", "Checkpoint", "DeltaFormat", "FileRef",
    "LiveFiles", "LogFile", "LogListing", "Snapshot", "barrier_version", "check_action",
    "checkpoint_sidecars", "checkpoint_state", "commit_time_ms", "commit_timestamp_ms",
    "data_path", "ddl_events", "deletion_vector_path", "files_added", "files_removed",
    "is_delta_table", "list_log", "log_version", "parse_commit_bytes", "read_commit",
    "safe_relpath", "snapshot", "table_id",
]
