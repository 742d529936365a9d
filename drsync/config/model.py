"""The typed result of backupRestore.ini: `Settings` (built only by `drsync.config.loader`)."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from drsync.site.layout import HISTORY_CSV

Role = Literal["primary", "standby"]
LogLevel = Literal["FATAL", "ERROR", "WARNING", "INFO", "DEBUG"]


class Settings(BaseModel):
    """The validated configuration. Build it with `load_settings` / `parse_settings_text`:
    constructing it directly (tests) checks types only, not ranges or cross-field rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_file: Path
    life_cycle: timedelta = timedelta(days=7)
    backuprestoreinfo_file: str = HISTORY_CSV
    username: str | None = None
    primary_env: Path | None = None
    standby_env: Path | None = None
    primary_warehouse: Path
    standby_warehouse: Path
    full_backup_exec_time_interval: timedelta | None = None  # None: only the first set is full
    backup_exec_time_interval: timedelta = timedelta(minutes=1)
    restore_interval: timedelta = timedelta(minutes=1)
    restore_delay: timedelta = timedelta(0)  # apply a set only once its barrier is this old
    verify_on_restore: Literal["off", "full"] = "off"  # re-hash files shipped as they are
    primary_host_ip: str | None = None
    restore_host_ip: str | None = None
    media_type: Literal["disk"] = "disk"
    parallel_process: int = 4
    compression_level: int = 1
    compression_type: Literal["zstd", "none"] = "zstd"
    primary_media_destination: Path
    primary_metadata_destination: Path
    restore_media_destination: Path
    restore_metadata_destination: Path
    backup_port: int | None = None
    restore_port: int | None = None
    primary_cluster_logging_level: LogLevel = "INFO"
    standby_cluster_logging_level: LogLevel = "INFO"
    log_file_count: int = 50
    check_balance_retry_times: int = 3
    primary_cluster_id: UUID | None = None
    standby_cluster_id: UUID | None = None
    desync_table_operation: Literal["none", "log-desync-table", "drop-desync-table"] = "none"
    cpu_cores: int | None = None
    local_reserve_file_count: int = 0  # 0: no limit
    suppressed_windows: tuple[tuple[time, time], ...] = ()
    ssh_port: int = 22
    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None
    publication_list: Path | None = None
    transport: Literal["ssh", "local"] = "ssh"
    bandwidth_limit: int | None = None  # bytes per second; None: unthrottled
    api_listen: str = "127.0.0.1"
    api_token_file: Path | None = None
    rpo_target: timedelta | None = None
    barrier_grace: timedelta = timedelta(seconds=1)
    remote_drsync_command: tuple[str, ...] = ("drsync",)
    remote_config_file: Path | None = None
    warehouse_layout: Literal["dws", "hive"] = "dws"
    desync_guard: float | None = 0.2  # share of the replicated tables; None: no guard
    # The standby re-checks every replicated table once per this span; None: never
    verify_interval: timedelta | None = timedelta(hours=24)
    # scheduled: a round every backup-exec-time-interval (the DWS behaviour); continuous: a
    # round as soon as a commit lands, at most one per continuous-min-interval (daemon/continuous.py)
    replication_mode: Literal["scheduled", "continuous"] = "scheduled"
    continuous_min_interval: timedelta = timedelta(seconds=1)
    # pyiceberg SQL catalogs (SQLAlchemy URLs) whose Iceberg tables are replicated / registered
    primary_iceberg_catalog: str | None = None
    standby_iceberg_catalog: str | None = None
    iceberg_catalog_name: str = "default"

    def in_suppressed_window(self, now: time) -> bool:
        """True if no new backup round may start at `now` (a window's end is exclusive)."""
        for start, end in self.suppressed_windows:
            if start < end:
                if start <= now < end:
                    return True
            elif now >= start or now < end:  # crosses midnight, e.g. 22:00-02:00
                return True
        return False

    @property
    def workers(self) -> int:
        """Worker threads for packing and shipping: parrallel-process, bounded by cpu-cores."""
        return min(self.parallel_process, self.cpu_cores or self.parallel_process)

    def warehouse(self, role: Role) -> Path:
        return self.primary_warehouse if role == "primary" else self.standby_warehouse

    def media_dir(self, role: Role) -> Path:
        if role == "primary":
            return self.primary_media_destination
        return self.restore_media_destination

    def metadata_dir(self, role: Role) -> Path:
        if role == "primary":
            return self.primary_metadata_destination
        return self.restore_metadata_destination

