"""The role commands of the `drsync` CLI (registered by drsync/cli/main.py, which owns the one error
boundary `_run`): switchover, failover, reprotect, set-independent.

Each command imports the service it calls inside the command (function-level imports on
purpose): `drsync --help`, a usage error and the SSH agent start without loading deltalake,
DuckDB, paramiko or FastAPI.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from drsync.config import Settings
from drsync.errors import ConfigError, DrsyncError, RoleError
from drsync.roles import audit

ConfigOpt = Annotated[Path, typer.Option("-c", "--config", help="backupRestore.ini of this site.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking (required when stdin "
                                                         "is not a terminal).")]


def confirm(command: str, what: str, yes: bool) -> None:
    """Destructive commands ask on a terminal and need --yes otherwise."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError(f"{command} {what}: pass --yes to confirm (stdin is not a terminal)")
    if not typer.confirm(f"{command} {what}. Continue?", default=False):
        raise RoleError(f"{command} cancelled: nothing changed")


def audited(command: str, settings: Settings, config: Path, fn: Callable[[], int]) -> int:
    try:
        return fn()
    except DrsyncError as e:
        if not e.message.startswith(f"{command} failed at step"):  # switchover audits its rollback
            audit.failed(settings, command, config, e)
        raise


def register(app: typer.Typer, run: Callable[[Callable[[], int | None]], None],
             load: Callable[[Path, str], Settings], say: Callable[[str], None]) -> None:

    @app.command()
    def switchover(
        config: ConfigOpt,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
        timeout: Annotated[float, typer.Option(
            min=1, help="Seconds to wait for the standby to restore the final set.")] = 300.0,
    ) -> None:
        """Planned role swap, run on the primary: fence its tables, ship and restore a final set,
        swap roles (sw_backupRestore.ini) and continue in the new direction. Zero data loss;
        any failure rolls back to the old roles."""

        def go() -> int:
            from drsync.roles.switchover import run_switchover

            settings = load(config, "primary")
            return audited("switchover", settings, config, lambda: run_switchover(
                settings, config, dry_run=dry_run, timeout=timeout, say=say))

        run(go)

    @app.command()
    def failover(
        config: ConfigOpt,
        yes: YesOpt = False,
        force: Annotated[bool, typer.Option(
            "--force", help="Fail over even though the primary still looks reachable and replicating.")
        ] = False,
    ) -> None:
        """The primary is lost: run on the standby. Stops restoring, brings every table back to the
        newest complete barrier (a half-applied set is set aside), makes the tables writable and
        records the failover recovery point."""

        def go() -> int:
            from drsync.roles.failover import run_failover

            settings = load(config, "standby")
            confirm("failover", f"promotes the standby {settings.standby_warehouse}", yes)
            return audited("failover", settings, config,
                           lambda: run_failover(settings, config, force=force, say=say))

        run(go)

    @app.command()
    def reprotect(config: ConfigOpt, yes: YesOpt = False) -> None:
        """Run on the old primary after a failover: set aside what it wrote after the last version
        both sides share, and make it the standby of the new primary (incremental, no full copy)."""

        def go() -> int:
            from drsync.roles.reprotect import run_reprotect

            settings = load(config, "primary")
            confirm("reprotect", f"makes {settings.primary_warehouse} the standby of the new primary",
                    yes)
            return audited("reprotect", settings, config, lambda: run_reprotect(settings, config, say=say))

        run(go)

    @app.command("set-independent")
    def set_independent(config: ConfigOpt, yes: YesOpt = False) -> None:
        """End the DR relationship on both sides (after stop-backup and stop-restore): delete the
        csv, sets, bundles and DR state; the standby's tables become writable. Tables untouched."""

        def go() -> int:
            from drsync.roles.independent import run_set_independent

            settings = load(config, "primary")
            confirm("set-independent", "deletes the DR state of both sites", yes)
            return audited("set-independent", settings, config,
                           lambda: run_set_independent(settings, config, say=say))

        run(go)
