"""The one-shot runs cron and systemd timers fire: `backup` and `restore` (and the logging
`retention` shares). Registered on `drsync.cli.app.app` when cli/main.py imports this module;
errors go through cli/app.py's one error boundary `_run`.

A one-shot run decides as the daemon does (daemon/oneshot.py), logs to the daemon's rotating file as
well as to the terminal, and exits 4 when stop-backup / stop-restore is recorded.

Each command imports the service it calls inside the command (function-level imports on
purpose): `drsync --help`, a usage error and the SSH agent start without loading deltalake,
DuckDB, paramiko or FastAPI.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from drsync.cli.app import ConfigOpt, _progress_ui, _run, app, err, out
from drsync.config import Role, Settings, load_settings
from drsync.errors import DrsyncError

log = logging.getLogger("drsync")


def _load_logged(path: Path, side: Role) -> Settings:
    """Settings for a one-shot backup/restore, logging to stderr and to the daemon's rotating
    log file (<metadata>/logs/drsync.log, log-file-count), so a cron line sending its output
    to /dev/null loses nothing."""
    from drsync.config.envfile import load_side_env
    from drsync.logsetup import setup_logging

    settings = load_settings(path)
    load_side_env(settings, side)
    try:
        setup_logging(settings, side)
    except OSError as e:  # an unwritable log directory must not stop replication
        setup_logging(settings, side, to_file=False)
        log.warning("cannot write the log file under %s: %s", settings.metadata_dir(side), e)
    return settings


def _outcome(line: str, failed: bool = False) -> None:
    """Print a one-shot run's outcome on stdout and keep it in the log file."""
    out.print(line, highlight=False, soft_wrap=True, markup=False)
    log.log(logging.WARNING if failed else logging.INFO, "%s", line, extra={"file_only": True})


@contextmanager
def _errors_logged() -> Iterator[None]:
    """A one-shot run's error line also goes to the log file (stderr prints it via _run)."""
    try:
        yield
    except DrsyncError as e:
        log.error("%s (%s)", e.message, e.code, extra={"file_only": True})
        raise


NowOpt = Annotated[bool, typer.Option(
    "--now", help="Run now, whatever backup-exec-time-interval, the suppressed windows and "
    "local-reserve-file-count say (stop-backup still applies).")]


@app.command()
def backup(
    config: ConfigOpt,
    publication_list: Annotated[Path | None, typer.Option(
        "--publication-list", help="pub.list for this round (lines db.pubname), instead of the "
        "publication-list key; without either, every publication is used.")] = None,
    now: NowOpt = False,
    confirm_desync: Annotated[bool, typer.Option(
        "--confirm-desync", help="Let this round desynchronise more tables than desync-guard "
        "allows (the round refused before names them).")] = False,
) -> None:
    """Run one backup round on the primary: cut a barrier, collect, bundle and ship a set.

    Honours backup-exec-time-interval, the suppressed windows, local-reserve-file-count and
    full-backup-exec-time-interval as the daemon does (a skipped run says why, exit 0);
    after stop-backup it does nothing and exits 4."""

    def go() -> int:
        settings = _load_logged(config, "primary")
        if publication_list is not None:
            settings = settings.model_copy(update={"publication_list": publication_list.absolute()})
        with _errors_logged():
            return _backup_once(settings, now, confirm_desync)

    _run(go)


def _backup_once(settings: Settings, now: bool, confirm_desync: bool = False) -> int:
    """One-shot backup after the settings are loaded: stop intent, the gate, the round."""
    from datetime import datetime

    from drsync.daemon.oneshot import decide_backup, refuse_if_stopped
    from drsync.primary.round import run_backup

    try:
        refuse_if_stopped(settings, "primary")
    except DrsyncError:
        run_backup(settings)  # records `stopped` in the state, for show-progress
        raise
    decision = decide_backup(settings, datetime.now(), now)
    if decision.skip and not decision.ship_only:
        _outcome(decision.skip)
        return 0
    with _progress_ui("backup") as ui:
        result = run_backup(settings, ui, cut=not decision.ship_only, confirm_desync=confirm_desync)
    line = result.message
    if decision.ship_only:
        line = f"no round: {decision.skip}; {line}"
    _outcome(decision.note + line, failed=bool(result.failed))
    for f in result.failed:
        err.print(f"failed object {f.name}: {f.error}", highlight=False, soft_wrap=True)
        log.warning("failed object %s: %s", f.name, f.error, extra={"file_only": True})
    return result.exit_code


@app.command()
def restore(
    config: ConfigOpt,
    no_delay: Annotated[bool, typer.Option(
        "--no-delay", help="Apply every shipped set now, ignoring restore-delay (e.g. before a failover).")
    ] = False,
) -> None:
    """Run one restore pass on the standby: apply every shipped set that is due (restore-delay),
    in chain order.

    After stop-restore it does nothing and exits 4."""

    def go() -> int:
        from drsync.daemon.oneshot import refuse_if_stopped
        from drsync.standby.restore import run_restore

        settings = _load_logged(config, "standby")
        if no_delay:
            settings = settings.model_copy(update={"restore_delay": timedelta(0)})
        with _errors_logged():
            try:
                refuse_if_stopped(settings, "standby")
            except DrsyncError:
                run_restore(settings)  # records `stopped` in the state, for show-progress
                raise
            with _progress_ui("restore") as ui:
                result = run_restore(settings, ui)
        _outcome(result.message, failed=bool(result.exit_code))
        return result.exit_code

    _run(go)
