"""The `drsync` command line. Thin: parse, call a service, print.

Exit codes: 0 done (or nothing to do), 1 failed, 2 bad configuration or usage,
3 done but some tables failed (partial set), 130 interrupted.

Each command imports the service it calls inside the command (function-level imports on
purpose): `drsync --help`, a usage error and the SSH agent start without loading deltalake,
DuckDB, paramiko or FastAPI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer._click import exceptions as click_exc  # typer vendors click since 0.2x

from drsync import __version__
from drsync.cli.app import (
    ConfigOpt,
    FormatOpt,
    _load,
    _run,
    _say,
    _text_or_json,
    app,
    err,
    out,
)
from drsync.config import load_settings, swap_config_text
from drsync.errors import DrsyncError
from drsync.roles.cli import register as register_role_commands

config_app = typer.Typer(help="Check or transform backupRestore.ini.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@app.command()
def prepare(
    config: ConfigOpt,
    check: Annotated[bool, typer.Option("--check", help="Only report what prepare would do.")] = False,
    fmt: FormatOpt = "text",
    all_tables: Annotated[bool, typer.Option(
        "--all-tables", help="Also protect every table of every database (creates the publication "
        "`all`, --all-databases) unless such a publication exists.")] = False,
) -> None:
    """Make the pair ready: SSH both ways, the same drsync on both, directories (0750) and the
    cluster pair recorded on both sides. Prints the authorized_keys line that pins the agent."""

    def go() -> int:
        from drsync.roles.prepare import run_prepare

        chosen = _text_or_json(fmt)
        settings = _load(config)
        report = run_prepare(settings, check_only=check)
        if all_tables and not check and report.ok:
            from drsync.publications.store import publish_everything

            publish_everything(settings.primary_metadata_destination)
        if chosen == "json":
            print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        else:
            print(report.text())
        return 0 if report.ok else 1

    _run(go)


def _intent(config: Path, side: str, op: str, stop: bool) -> None:
    def go() -> int:
        from drsync.site.state import clear_stop, request_stop

        settings = load_settings(config)
        meta = (settings.primary_metadata_destination if side == "primary"
                else settings.restore_metadata_destination)
        if stop:
            request_stop(meta, op)
            out.print(f"{op} will stop at the next step boundary; start-{op} resumes it")
        else:
            was = clear_stop(meta, op)
            out.print(f"{op} resumed" if was else f"{op} was not stopped")
        from drsync.daemon.oneshot import show_intent_in_state

        show_intent_in_state(settings, "primary" if side == "primary" else "standby", stop)
        return 0

    _run(go)


@app.command("stop-backup")
def stop_backup(config: ConfigOpt) -> None:
    """Ask backups to stop: the running round finishes its current step, no new round starts."""
    _intent(config, "primary", "backup", stop=True)


@app.command("start-backup")
def start_backup(config: ConfigOpt) -> None:
    """Allow backup rounds again after stop-backup."""
    _intent(config, "primary", "backup", stop=False)


@app.command("stop-restore")
def stop_restore(config: ConfigOpt) -> None:
    """Ask restores to stop after the set being applied."""
    _intent(config, "standby", "restore", stop=True)


@app.command("start-restore")
def start_restore(config: ConfigOpt) -> None:
    """Allow restore passes again after stop-restore."""
    _intent(config, "standby", "restore", stop=False)


@config_app.command("check")
def config_check(config: ConfigOpt) -> None:
    """Validate every key of the file; print the problems, one per line."""

    def go() -> int:
        settings = load_settings(config)
        out.print(f"{settings.source_file}: configuration is valid (transport={settings.transport})",
                  highlight=False)
        return 0

    _run(go)


@config_app.command("swap")
def config_swap(config: ConfigOpt) -> None:
    """Print sw_backupRestore.ini: the same file with primary/standby pairs swapped."""

    def go() -> int:
        load_settings(config)  # never swap a file we would refuse to run
        sys.stdout.write(swap_config_text(config.read_text()))
        return 0

    _run(go)


@app.command()
def daemon(
    config: ConfigOpt,
    role: Annotated[str | None, typer.Option(
        help="primary or standby. Only asserts the role this host's DR state says it holds; "
             "required with transport=local, where both sites are this host.")] = None,
    tick: Annotated[float | None, typer.Option(
        hidden=True, help="For tests: run every job every TICK seconds.")] = None,
) -> None:
    """Run this host's schedule (backup rounds or restore passes, retention) and HTTP API until SIGTERM.

    SIGHUP reloads the configuration (a bad file is logged and the old one kept); SIGTERM lets
    the running step finish, then exits 0."""

    def go() -> int:
        from drsync.daemon.main import start

        return start(config, role, tick)

    _run(go)


@app.command()
def retention(
    config: ConfigOpt,
    role: Annotated[str | None, typer.Option(
        help="primary or standby (asserts this host's role; required with transport=local).")] = None,
) -> None:
    """Delete bundles and manifests of restored sets older than life-cycle, on this host's side.

    Never a set the standby has not restored, never the newest set (the daemon does this hourly)."""

    def go() -> int:
        from drsync.cli.oneshot import _load_logged, _outcome
        from drsync.site.host_role import detect_role
        from drsync.site.retention import run_retention

        settings = load_settings(config)
        side = detect_role(settings, role)
        settings = _load_logged(config, side)  # the timer's runs land in the log file too
        _outcome(run_retention(settings, side).message)
        return 0

    _run(go)


@app.command()
def agent(
    media_root: Annotated[Path, typer.Option(help="restore-media-destination on this host.")],
    metadata_root: Annotated[Path, typer.Option(help="restore-metadata-destination on this host.")],
    config: Annotated[Path | None, typer.Option(
        "--config", help="backupRestore.ini on this host: enables restore passes on request.")] = None,
    warehouse_root: Annotated[Path | None, typer.Option(
        help="This host's warehouse, read only: enables `drsync verify` from the other host.")] = None,
) -> None:
    """The standby's end of transport=ssh: speaks drsync's protocol on stdin/stdout.

    Started by the primary over SSH (or pinned in authorized_keys with
    command="drsync agent --media-root ... --metadata-root ..."); not for interactive use."""
    from drsync.standby.agentops import SITE_OPERATIONS
    from drsync.transport.agent import run_agent

    raise typer.Exit(run_agent(media_root, metadata_root, config, warehouse_root, operations=SITE_OPERATIONS))


@app.command()
def version() -> None:
    """Print drsync's version."""
    print(__version__)




register_role_commands(app, _run, _load, _say)
# the other command modules register on `app` when imported
import drsync.cli.drill  # noqa: E402  (drill start/list/drop)
import drsync.cli.inspect  # noqa: E402  (check, show-progress, verify)
import drsync.cli.oneshot  # noqa: E402  (backup, restore)
import drsync.cli.publications  # noqa: E402, F401  (publication, cancel-publication, reseed)


def main() -> None:
    """Run the CLI; a usage error (unknown command or option, bad value) is one `error:` line
    and a hint, exit 2, like every other error (click would draw a multi-line panel)."""
    from drsync.cli.dws import translate

    try:
        args = translate(sys.argv[1:])
    except DrsyncError as e:
        err.print(f"error: {e.message}", highlight=False, markup=False, soft_wrap=True)
        if e.hint:
            err.print(f"hint: {e.hint}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(e.exit_code)
    try:
        code = app(args=args, standalone_mode=False)
    except click_exc.NoArgsIsHelpError as e:
        e.show()  # `drsync` or `drsync config` alone: the help, as before
        sys.exit(2)
    except click_exc.UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "drsync"
        err.print(f"error: {e.format_message()}".replace("\n", " "), highlight=False, markup=False,
                  soft_wrap=True)
        err.print(f"hint: see `{where} --help`", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    except click_exc.ClickException as e:  # e.g. a file option that cannot be opened
        err.print(f"error: {e.format_message()}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except typer.Abort:
        err.print("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
