"""The `drsync` command line. Thin: parse, call a service, print.

Exit codes: 0 done (or nothing to do), 1 failed, 2 bad configuration or usage,
3 done but some tables failed (partial set), 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from drsync import __version__
from drsync.config import Settings, load_settings, swap_config_text
from drsync.errors import ConfigError, DrsyncError

app = typer.Typer(
    help="drsync: fine-grained disaster-recovery replication of Delta Lake tables.\n\n"
    "Every command reads backupRestore.ini (-c). Run `drsync COMMAND --help` for details.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check or transform backupRestore.ini.", no_args_is_help=True)
app.add_typer(config_app, name="config")
publication_app = typer.Typer(
    help="Choose what is protected: publications of all tables, schemas or tables of a database "
    "(stored in the primary's metadata; rounds use those pub.list names, or all).",
    no_args_is_help=True)
app.add_typer(publication_app, name="publication")

err = Console(stderr=True)
out = Console()
ConfigOpt = Annotated[Path, typer.Option("-c", "--config", help="backupRestore.ini of this site.")]
log = logging.getLogger("drsync")


def _setup_logging(level: str) -> None:
    numeric = logging.CRITICAL if level == "FATAL" else getattr(logging, level, logging.INFO)
    logging.basicConfig(level=numeric, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr, force=True)
    # paramiko narrates every connection at INFO; its warnings and errors still show.
    logging.getLogger("paramiko").setLevel(max(numeric, logging.WARNING))


def _load(path: Path, side: str = "primary") -> Settings:
    settings = load_settings(path)
    level = (settings.primary_cluster_logging_level if side == "primary"
             else settings.standby_cluster_logging_level)
    _setup_logging(level)
    return settings


@contextmanager
def _progress_ui(label: str) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on a terminal; plain log lines per step otherwise."""
    if not err.is_terminal:
        last = {"step": ""}

        def plain(step: str, done: int, total: int) -> None:
            if step != last["step"]:
                last["step"] = step
                log.debug("%s: step %s", label, step)

        yield plain
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def rich_ui(step: str, done: int, total: int) -> None:
            bar.update(task, description=f"{label} {step}", completed=done, total=total or None)

        yield rich_ui


def _run(fn: Callable[[], int | None]) -> None:
    """The one error boundary: DrsyncError -> one line (+ hint), never a traceback."""
    try:
        code = fn() or 0
    except DrsyncError as e:
        err.print(f"[red]error:[/red] {e.message}", highlight=False, markup=True, soft_wrap=True)
        if e.hint:
            err.print(f"hint: {e.hint}", highlight=False, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    except Exception as e:  # a bug: still one line, traceback only on request
        if os.environ.get("DRSYNC_DEBUG"):
            raise
        err.print(f"[red]internal error:[/red] {type(e).__name__}: {e}", highlight=False, soft_wrap=True)
        err.print("hint: re-run with DRSYNC_DEBUG=1 for the traceback and report it", highlight=False)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@app.command()
def backup(config: ConfigOpt) -> None:
    """Run one backup round on the primary: cut a barrier, collect, bundle and ship a set."""

    def go() -> int:
        from drsync.primary import run_backup

        settings = _load(config)
        with _progress_ui("backup") as ui:
            result = run_backup(settings, ui)
        out.print(result.message, highlight=False, soft_wrap=True)
        for f in result.failed:
            err.print(f"failed object {f.name}: {f.error}", highlight=False, soft_wrap=True)
        return result.exit_code

    _run(go)


@app.command()
def restore(config: ConfigOpt) -> None:
    """Run one restore pass on the standby: apply every shipped set, in chain order."""

    def go() -> int:
        from drsync.standby import run_restore

        settings = _load(config, "standby")
        with _progress_ui("restore") as ui:
            result = run_restore(settings, ui)
        out.print(result.message, highlight=False, soft_wrap=True)
        return result.exit_code

    _run(go)


FormatOpt = Annotated[str, typer.Option("--format", help="text, or json (for scripts and monitoring).")]


def _text_or_json(fmt: str) -> Literal["text", "json"]:
    if fmt == "text":
        return "text"
    if fmt == "json":
        return "json"
    raise ConfigError(f"--format must be text or json, not {fmt!r}")


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
        from drsync.prepare import run_prepare

        chosen = _text_or_json(fmt)
        settings = _load(config)
        report = run_prepare(settings, check_only=check)
        if all_tables and not check and report.ok:
            from drsync.publications import publish_everything

            publish_everything(settings.primary_metadata_destination)
        if chosen == "json":
            print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        else:
            print(report.text())
        return 0 if report.ok else 1

    _run(go)


@app.command("check")
def check_(config: ConfigOpt, fmt: FormatOpt = "text") -> None:
    """Small named checks of the pair (config, SSH, host key, versions, disk space, clock skew,
    locks, pair), each with a hint when it fails. Exit 0 all OK, 1 a check failed, 2 bad config."""

    def go() -> int:
        from drsync.checks import config_failure, format_checks, run_checks

        chosen = _text_or_json(fmt)
        try:
            settings = _load(config)
        except ConfigError as e:
            print(format_checks(config_failure(e), chosen))
            return e.exit_code
        results = run_checks(settings)
        print(format_checks(results, chosen))
        return 0 if all(r.ok for r in results) else 1

    _run(go)


@app.command("show-progress")
def show_progress(
    config: ConfigOpt,
    fmt: Annotated[
        str | None, typer.Option("--format", help="json or table (default: table on a terminal)")
    ] = None,
    watch: Annotated[bool, typer.Option(
        "--watch", help="Redraw the table every --interval seconds until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between refreshes with --watch.")] = 2.0,
) -> None:
    """Print the progress document of both sides (the DWS tool's JSON), with RPO."""

    def go() -> int:
        from drsync.progress import build_document, is_abnormal, membership_notes, read_states

        settings = _load(config)
        if watch:
            from drsync.watch import watch_progress

            return watch_progress(settings, interval, console=out)
        states = read_states(settings)
        doc = build_document(*states)
        chosen = fmt or ("table" if out.is_terminal else "json")
        if chosen not in ("json", "table"):
            raise DrsyncError(f"--format must be json or table, not {chosen!r}")
        if chosen == "json":
            print(json.dumps(doc, indent=2, ensure_ascii=False))
        else:
            from drsync.watch import progress_table

            out.print(progress_table(doc, membership_notes(*states)))
        return 1 if is_abnormal(doc) else 0

    _run(go)


@app.command()
def verify(
    config: ConfigOpt,
    table: Annotated[str | None, typer.Option(help="Only this table (db.schema.table).")] = None,
    deep: Annotated[bool, typer.Option(help="Also compare rows, read by DuckDB on both sides.")] = False,
) -> None:
    """Check that the standby equals the primary at the last restored barrier."""

    def go() -> int:
        from drsync.verify import verify_tables

        settings = _load(config, "standby")
        verdicts = verify_tables(settings, table, deep)
        bad = 0
        for v in verdicts:
            rows = f", {v.rows} rows" if v.rows is not None else ""
            status = "ok" if v.ok else "MISMATCH"
            out.print(f"{status:8} {v.name} @ version {v.version}: {v.files_checked} files{rows}",
                      highlight=False, soft_wrap=True)
            for p in v.problems:
                out.print(f"         problem: {p}", highlight=False, soft_wrap=True)
            for n in v.notes:
                out.print(f"         note: {n}", highlight=False, soft_wrap=True)
            bad += not v.ok
        out.print(f"{len(verdicts) - bad} of {len(verdicts)} table(s) equal at the barrier",
                  highlight=False, soft_wrap=True)
        return 1 if bad else 0

    _run(go)


NameArg = Annotated[str, typer.Argument(help="Publication name (letters, digits, _$@+=~,-).")]


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


@publication_app.command("create")
def publication_create(
    config: ConfigOpt,
    name: NameArg,
    db: Annotated[str | None, typer.Option("--db", help="The database the publication covers.")] = None,
    all_databases: Annotated[bool, typer.Option(
        "--all-databases",
        help="Every table of every database, present and future (a drsync addition).")] = False,
    all_tables: Annotated[bool, typer.Option("--all-tables", help="Every table of --db.")] = False,
    schema: Annotated[list[str] | None, typer.Option(
        "--schema", help="Whole schemas of --db (s1,s2); tables created there later follow.")] = None,
    table: Annotated[list[str] | None, typer.Option(
        "--table", help="Tables of --db as schema.table (s.t1,s.t2).")] = None,
) -> None:
    """Create a publication. A table or schema that does not exist yet is accepted with a warning."""

    def go() -> int:
        from drsync.publication_report import missing_objects
        from drsync.publications import ALL_DATABASES, create_publication

        settings = load_settings(config)
        if all_databases == (db is not None):
            raise ConfigError("give exactly one of --db DB or --all-databases")
        pub = create_publication(settings.primary_metadata_destination, name, db or ALL_DATABASES,
                                 all_tables=all_tables or all_databases, schemas=_split(schema),
                                 tables=_split(table))
        for m in missing_objects(settings.primary_warehouse, pub):
            err.print(f"warning: {m} does not exist on the primary (yet)", highlight=False, soft_wrap=True)
        out.print(f"created publication {pub.describe()}", highlight=False, soft_wrap=True)
        return 0

    _run(go)


@publication_app.command("alter")
def publication_alter(
    config: ConfigOpt,
    name: NameArg,
    add_table: Annotated[list[str] | None, typer.Option("--add-table", help="Add schema.table.")] = None,
    add_schema: Annotated[list[str] | None, typer.Option("--add-schema", help="Add a whole schema.")] = None,
    drop_table: Annotated[list[str] | None, typer.Option("--drop-table", help="Remove schema.table.")] = None,
    drop_schema: Annotated[list[str] | None, typer.Option(
        "--drop-schema", help="Remove a schema.")] = None,
) -> None:
    """Add or remove tables and schemas; tables no longer covered are desynchronised next round."""

    def go() -> int:
        from drsync.publication_report import missing_objects
        from drsync.publications import alter_publication

        settings = load_settings(config)
        pub = alter_publication(settings.primary_metadata_destination, name,
                                add_tables=_split(add_table), add_schemas=_split(add_schema),
                                drop_tables=_split(drop_table), drop_schemas=_split(drop_schema))
        for m in missing_objects(settings.primary_warehouse, pub):
            err.print(f"warning: {m} does not exist on the primary (yet)", highlight=False, soft_wrap=True)
        out.print(f"altered publication {pub.describe()}", highlight=False, soft_wrap=True)
        return 0

    _run(go)


@publication_app.command("drop")
def publication_drop(config: ConfigOpt, name: NameArg) -> None:
    """Drop a publication; its tables are desynchronised next round unless another covers them."""

    def go() -> int:
        from drsync.publications import drop_publication

        drop_publication(load_settings(config).primary_metadata_destination, name)
        out.print(f"dropped publication {name}", highlight=False)
        return 0

    _run(go)


@publication_app.command("list")
def publication_list(config: ConfigOpt, fmt: FormatOpt = "text") -> None:
    """Each publication and the tables it resolves to now; objects that do not exist are marked."""

    def go() -> int:
        from drsync.publication_report import list_report

        settings = load_settings(config)
        report = list_report(settings.primary_metadata_destination, settings.primary_warehouse)
        if _text_or_json(fmt) == "json":
            print(json.dumps(report, indent=2, ensure_ascii=False))
            return 0
        if report["configured"] is False:
            out.print("no publications: nothing is protected", highlight=False)
        for p in report["publications"]:
            out.print(p["describe"], highlight=False, soft_wrap=True)
            for t in p["tables"]:
                out.print(f"    {t}", highlight=False)
            for m in p["missing"]:
                out.print(f"    MISSING {m} (does not exist on the primary)", highlight=False)
        return 0

    _run(go)


@app.command("cancel-publication")
def cancel_publication(
    config: ConfigOpt,
    object_list: Annotated[Path | None, typer.Option(
        "--object-list",
        help="File of db.schema.table or db.schema lines (# comments) to stop protecting.")] = None,
    all_cancel: Annotated[bool, typer.Option("--all-cancel", help="Stop protecting everything.")] = False,
) -> None:
    """Stop protecting objects. The next round desynchronises them; desync-table-operation decides
    what the standby does. Objects that could not be cancelled go to OBJECT_LIST.failed (exit 3)."""

    def go() -> int:
        from drsync.publications import cancel_objects
        from drsync.publist import parse_object_list

        settings = load_settings(config)
        if all_cancel == (object_list is not None):
            raise ConfigError("give exactly one of --object-list FILE or --all-cancel")
        objects = parse_object_list(object_list) if object_list is not None else None
        failed = cancel_objects(settings.primary_metadata_destination, settings.primary_warehouse, objects)
        if object_list is not None:
            from drsync.fsutil import atomic_write_bytes

            failed_file = object_list.with_name(object_list.name + ".failed")
            if failed:
                atomic_write_bytes(failed_file, "".join(f"{o}\t{r}\n" for o, r in failed).encode())
                err.print(f"{len(failed)} object(s) not cancelled, listed in {failed_file}",
                          highlight=False, soft_wrap=True)
            else:
                failed_file.unlink(missing_ok=True)
        n = "every object" if objects is None else f"{len(objects) - len(failed)} object(s)"
        out.print(f"cancelled {n}; the next backup round desynchronises them", highlight=False)
        return 3 if failed else 0

    _run(go)


@app.command()
def reseed(
    config: ConfigOpt,
    table: Annotated[list[str] | None, typer.Option(
        "--table", help="db.schema.table to copy again from scratch (repeatable).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Copy every published table again.")] = False,
) -> None:
    """Copy tables again from scratch at the next round (the standby swaps each in whole)."""

    def go() -> int:
        from drsync.membership import request_reseed
        from drsync.publications import split_name

        settings = load_settings(config)
        names = _split(table)
        if all_ == bool(names):
            raise ConfigError("give --table db.schema.table (repeatable) or --all")
        for n in names:
            split_name(n, 3, "table")
        request_reseed(settings.primary_metadata_destination, None if all_ else names)
        out.print(f"reseed of {'every table' if all_ else ', '.join(names)} requested for the next round",
                  highlight=False, soft_wrap=True)
        return 0

    _run(go)


def _intent(config: Path, side: str, op: str, stop: bool) -> None:
    def go() -> int:
        from drsync.state import clear_stop, request_stop

        settings = load_settings(config)
        meta = (settings.primary_metadata_destination if side == "primary"
                else settings.restore_metadata_destination)
        if stop:
            request_stop(meta, op)
            out.print(f"{op} will stop at the next step boundary; start-{op} resumes it")
        else:
            was = clear_stop(meta, op)
            out.print(f"{op} resumed" if was else f"{op} was not stopped")
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
        from drsync.daemon import start

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
        from drsync.daemon import detect_role
        from drsync.retention import run_retention

        settings = load_settings(config)
        side = detect_role(settings, role)
        _setup_logging(settings.primary_cluster_logging_level if side == "primary"
                       else settings.standby_cluster_logging_level)
        out.print(run_retention(settings, side).message, highlight=False, soft_wrap=True)
        return 0

    _run(go)


@app.command()
def agent(
    media_root: Annotated[Path, typer.Option(help="restore-media-destination on this host.")],
    metadata_root: Annotated[Path, typer.Option(help="restore-metadata-destination on this host.")],
    config: Annotated[Path | None, typer.Option(
        "--config", help="backupRestore.ini on this host: enables restore passes on request.")] = None,
) -> None:
    """The standby's end of transport=ssh: speaks drsync's protocol on stdin/stdout.

    Started by the primary over SSH (or pinned in authorized_keys with
    command="drsync agent --media-root ... --metadata-root ..."); not for interactive use."""
    from drsync.transport.agent import run_agent

    raise typer.Exit(run_agent(media_root, metadata_root, config))


@app.command()
def version() -> None:
    """Print drsync's version."""
    print(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
