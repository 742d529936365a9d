"""`drsync drill start/list/drop`: writable forks of the standby at a retained barrier, made
while replication goes on (logic in drill.py). Registered on `drsync.cli.app.app` when this module
is imported (cli/main.py imports it), using cli/app.py's one error boundary `_run`.

Each command imports the service it calls inside the command (function-level imports on
purpose): `drsync --help`, a usage error and the SSH agent start without loading deltalake,
DuckDB, paramiko or FastAPI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from drsync.cli.app import ConfigOpt, FormatOpt, _load, _run, _text_or_json, app, err, out

drill_app = typer.Typer(
    help="Drills: writable forks of the standby's replicated tables at a barrier (hard links, "
    "replication goes on).",
    no_args_is_help=True)
app.add_typer(drill_app, name="drill")

NameArg = Annotated[str, typer.Argument(help="Drill name (letters, digits, _ . -).")]


def _say(line: str) -> None:
    out.print(line, highlight=False, soft_wrap=True, markup=False)


def _note(line: str) -> None:
    """Side remarks (a killed drill finished, a table left out) go to stderr: stdout stays the
    result (JSON with --format json)."""
    err.print(line, highlight=False, soft_wrap=True, markup=False)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@drill_app.command("start")
def drill_start(
    config: ConfigOpt,
    name: NameArg,
    into: Annotated[Path, typer.Option("--into", help="New directory: DIR/<db>/<schema>/<table> per "
                                       "table (same filesystem as the standby warehouse).")],
    at: Annotated[str | None, typer.Option(
        "--at", help="Barrier key YYYYMMDD_HHMMSS, or a time (newest barrier at or before it; "
        "local time unless it has a zone). Default: the newest barrier.")] = None,
    table: Annotated[list[str] | None, typer.Option(
        "--table", help="Only these tables (db.schema.table; repeat or comma-separate).")] = None,
    publication: Annotated[str | None, typer.Option(
        "--publication", help="Only the tables this publication covers.")] = None,
    copy: Annotated[bool, typer.Option(
        "--copy", help="Copy data files instead of hard-linking them (another filesystem).")] = False,
) -> None:
    """Fork the replicated tables at a barrier into DIR as writable Delta tables."""

    def go() -> int:
        from drsync.errors import DrillError
        from drsync.roles.drill import start_drill

        settings = _load(config, "standby")
        tables = [t.strip() for item in table or [] for t in item.split(",") if t.strip()]
        if tables and publication:
            raise DrillError("give --table or --publication, not both")
        rec = start_drill(settings, name, into, at=at, tables=tables, publication=publication,
                          copy=copy, say=_note)
        data = (f"{_mb(rec.copied_bytes)} of data copied" if rec.copy_data
                else f"{_mb(rec.linked_bytes)} of data hard-linked, 0 copied")
        _say(f"drill {name}: {len(rec.tables)} table(s) at barrier {rec.key} in {rec.into}; "
             f"{_mb(rec.log_bytes)} of log copied, {data}")
        return 0

    _run(go)


@drill_app.command("list")
def drill_list(config: ConfigOpt, fmt: FormatOpt = "text") -> None:
    """The drills: name, barrier, tables, bytes written since, and what each keeps."""

    def go() -> int:
        from drsync.roles.drill import list_drills

        settings = _load(config, "standby")
        infos = list_drills(settings, say=_note)
        if _text_or_json(fmt) == "json":
            print(json.dumps([i.model_dump() for i in infos], indent=2))
            return 0
        if not infos:
            _say("no drills")
        for i in infos:
            _say(f"{i.name}: barrier {i.key} ({i.barrier}), {i.tables} table(s) in {i.into}; "
                 f"{_mb(i.written_since)} written since; keeps {i.keeps}")
        return 0

    _run(go)


@drill_app.command("drop")
def drill_drop(
    config: ConfigOpt,
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking (required when "
                                      "stdin is not a terminal).")] = False,
) -> None:
    """Remove a drill's fork (never a replicated file) and release its barrier."""

    def go() -> int:
        from drsync.roles.cli import confirm
        from drsync.roles.drill import drop_drill

        settings = _load(config, "standby")
        confirm("drill drop", f"removes the fork of drill {name}", yes)
        _say(drop_drill(settings, name, say=_note))
        return 0

    _run(go)
