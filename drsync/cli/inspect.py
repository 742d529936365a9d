"""The commands that look and change nothing: `check`, `show-progress` and `verify`.
Registered on `drsync.cli.app.app` when this module is imported (cli/main.py imports it), through
cli/app.py's one error boundary `_run`.

Each command imports the service it calls inside the command (function-level imports on
purpose): `drsync --help`, a usage error and the SSH agent start without loading deltalake,
DuckDB, paramiko or FastAPI.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from drsync.cli.app import ConfigOpt, FormatOpt, _load, _run, _text_or_json, app, out
from drsync.errors import ConfigError, DrsyncError


@app.command("check")
def check_(config: ConfigOpt, fmt: FormatOpt = "text") -> None:
    """Small named checks of the pair (config, SSH, host key, versions, disk space, clock skew,
    locks, pair), each with a hint when it fails. Exit 0 all OK, 1 a check failed, 2 bad config."""

    def go() -> int:
        from drsync.site.checks import config_failure, format_checks, run_checks

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
        str | None, typer.Option(
            "--format", help="json (drsync's document), dws (exactly the DWS tool's document) or "
            "table (default on a terminal)")
    ] = None,
    watch: Annotated[bool, typer.Option(
        "--watch", help="Redraw the table every --interval seconds until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between refreshes with --watch.")] = 2.0,
) -> None:
    """Print the progress document of both sides (the DWS tool's JSON), with RPO."""

    def go() -> int:
        from drsync.roles.status import progress_document
        from drsync.site.document import membership_notes
        from drsync.site.progress import read_states

        settings = _load(config)
        if watch:
            from drsync.cli.watch import watch_progress

            return watch_progress(settings, interval, console=out)
        states = read_states(settings)
        doc = progress_document(settings, states)
        chosen = fmt or ("table" if out.is_terminal else "json")
        if chosen not in ("json", "table", "dws"):
            raise DrsyncError(f"--format must be json, table or dws, not {chosen!r}")
        if chosen == "dws":  # exactly the DWS tool's document: its fields, its conventions
            from drsync.cli.dws_progress import dws_document

            print(json.dumps(dws_document(*states), indent=2, ensure_ascii=False))
        elif chosen == "json":
            print(json.dumps(doc.as_json(), indent=2, ensure_ascii=False))
        else:
            from drsync.cli.watch import progress_table

            out.print(progress_table(doc, membership_notes(*states)))
        return 1 if doc.abnormal else 0

    _run(go)


@app.command()
def verify(
    config: ConfigOpt,
    table: Annotated[str | None, typer.Option(help="Only this table (db.schema.table).")] = None,
    deep: Annotated[bool, typer.Option(help="Also compare rows, read by DuckDB on both sides.")] = False,
) -> None:
    """Check that the standby equals the primary at the last restored barrier.

    Each side hashes its own files (with transport=ssh the other host's agent does), so it runs
    on either host and no table data crosses the link."""

    def go() -> int:
        from drsync.standby.verify import verify_tables

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
