"""The commands that choose what is protected: `publication create/alter/drop/list`,
`cancel-publication` and `reseed`. They only record intent (publications.json, reseed.json);
the next backup round acts on it. Registered on `drsync.cli.app.app` when this module is imported
(cli/main.py imports it), and they use cli/app.py's one error boundary `_run`.

Each command imports the service it calls inside the command (function-level imports on
purpose): `drsync --help`, a usage error and the SSH agent start without loading deltalake,
DuckDB, paramiko or FastAPI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from drsync.cli.app import ConfigOpt, FormatOpt, _run, _text_or_json, app, err, out
from drsync.config import Settings, load_settings
from drsync.errors import ConfigError
from drsync.publications.store import Publication

publication_app = typer.Typer(
    help="Choose what is protected: publications of all tables, schemas or tables of a database "
    "(stored in the primary's metadata; rounds use those pub.list names, or all).",
    no_args_is_help=True)
app.add_typer(publication_app, name="publication")

NameArg = Annotated[str, typer.Argument(help="Publication name (letters, digits, _$@+=~,-).")]


def _split(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated names (a comma inside backticks is part of a name)."""
    from drsync.site.names import split_names

    return [v for item in values or [] for v in split_names(item)]


def _hive(settings: Settings) -> bool:
    return settings.warehouse_layout == "hive"


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
        "--schema", help="Whole schemas of --db (s1,s2); tables created there later follow. "
        "May be given with --table.")] = None,
    table: Annotated[list[str] | None, typer.Option(
        "--table", help="Tables of --db as schema.table (s.t1,s.t2; warehouse-layout=hive: t1,t2); "
        "a part holding '.' in backticks: s.`delta-0.8.0`.")] = None,
) -> None:
    """Create a publication. A table or schema that does not exist yet is accepted with a warning.

    `--schema s1 --table s2.t` together is the DWS `FOR TABLES IN SCHEMA s1, TABLE s2.t`."""

    def go() -> int:
        from drsync.publications.store import ALL_DATABASES, create_publication

        settings = load_settings(config)
        if all_databases == (db is not None):
            raise ConfigError("give exactly one of --db DB or --all-databases")
        pub = create_publication(settings.primary_metadata_destination, name, db or ALL_DATABASES,
                                 all_tables=all_tables or all_databases, schemas=_split(schema),
                                 tables=_split(table), hive=_hive(settings))
        return _report(settings, pub, "created")

    _run(go)


def _report(settings: Settings, pub: Publication, done: str) -> int:
    """Say what was recorded, warning about objects the primary does not have (yet)."""
    from drsync.publications.report import missing_objects

    for m in missing_objects(settings.primary_warehouse, pub, settings.warehouse_layout):
        err.print(f"warning: {m} does not exist on the primary (yet)", highlight=False, soft_wrap=True)
    out.print(f"{done} publication {pub.describe()}", highlight=False, soft_wrap=True)
    return 0


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
        from drsync.publications.store import alter_publication

        settings = load_settings(config)
        pub = alter_publication(settings.primary_metadata_destination, name,
                                add_tables=_split(add_table), add_schemas=_split(add_schema),
                                drop_tables=_split(drop_table), drop_schemas=_split(drop_schema),
                                hive=_hive(settings))
        return _report(settings, pub, "altered")

    _run(go)


@publication_app.command("drop")
def publication_drop(config: ConfigOpt, name: NameArg) -> None:
    """Drop a publication; its tables are desynchronised next round unless another covers them."""

    def go() -> int:
        from drsync.publications.store import drop_publication

        drop_publication(load_settings(config).primary_metadata_destination, name)
        out.print(f"dropped publication {name}", highlight=False)
        return 0

    _run(go)


@publication_app.command("list")
def publication_list(config: ConfigOpt, fmt: FormatOpt = "text") -> None:
    """Each publication and the tables it resolves to now; objects that do not exist are marked."""

    def go() -> int:
        from drsync.publications.report import list_report

        settings = load_settings(config)
        report = list_report(settings.primary_metadata_destination, settings.primary_warehouse,
                             settings.warehouse_layout)
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
        help="File of db.schema.table or db.schema lines (hive layout: db.table; # comments) to "
        "stop protecting. A file with a malformed line cancels nothing and names every bad line.")] = None,
    all_cancel: Annotated[bool, typer.Option("--all-cancel", help="Stop protecting everything.")] = False,
) -> None:
    """Stop protecting objects. The next round desynchronises them; desync-table-operation decides
    what the standby does. Objects that could not be cancelled go to OBJECT_LIST.failed (exit 3)."""

    def go() -> int:
        from drsync.publications.publist import parse_object_list
        from drsync.publications.store import cancel_objects

        settings = load_settings(config)
        if all_cancel == (object_list is not None):
            raise ConfigError("give exactly one of --object-list FILE or --all-cancel")
        objects = parse_object_list(object_list, _hive(settings)) if object_list is not None else None
        failed = cancel_objects(settings.primary_metadata_destination, settings.primary_warehouse, objects,
                                _hive(settings))
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
        from drsync.primary.membership import request_reseed
        from drsync.site.names import canonical

        settings = load_settings(config)
        names = [canonical(n, "table", counts=(2, 3)) for n in _split(table)]
        if all_ == bool(names):
            raise ConfigError("give --table db.schema.table (repeatable) or --all")
        request_reseed(settings.primary_metadata_destination, None if all_ else names)
        out.print(f"reseed of {'every table' if all_ else ', '.join(names)} requested for the next round",
                  highlight=False, soft_wrap=True)
        return 0

    _run(go)
