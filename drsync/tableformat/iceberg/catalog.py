"""pyiceberg SQL catalogs: the primary's catalog row as a table's pointer, the standby's row
switched once the new metadata JSON is in place.

The schema is pyiceberg's `iceberg_tables` (catalog_name, table_namespace, table_name,
metadata_location, previous_metadata_location). On the primary, a directory without
version-hint.text is an Iceberg table when a row's metadata_location lies in its `metadata/`;
that row's identifier (namespace, name) travels with the table's sets (the manifest's
`catalog`). On the standby, the row of that same identifier is inserted, or updated in one
transaction only if it still holds the location drsync last saw (never a writer's), so a
client that reads `db.orders` on the primary reads `db.orders` on the standby after a
failover. A table with no primary row (a directory table) is registered under drsync's name
`db.schema.table` (namespace `db.schema`). The standby checks what it is sent: each part a
non-empty name of at most 255 characters with no dot and no control character.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drsync.errors import TableFormatError
from drsync.tableformat.iceberg.locations import META_DIR, local_path


@dataclass
class CatalogConfig:
    primary: str | None = None
    standby: str | None = None
    name: str = "default"


CONFIG = CatalogConfig()
_ENGINES: dict[str, Any] = {}


def _tables(url: str) -> tuple[Any, Any]:
    import sqlalchemy as sa

    if url not in _ENGINES:
        md = sa.MetaData()
        table = sa.Table(
            "iceberg_tables", md,
            sa.Column("catalog_name", sa.String(255), primary_key=True),
            sa.Column("table_namespace", sa.String(255), primary_key=True),
            sa.Column("table_name", sa.String(255), primary_key=True),
            sa.Column("metadata_location", sa.String(1000)),
            sa.Column("previous_metadata_location", sa.String(1000)),
            sa.Column("iceberg_type", sa.String(5)),  # pyiceberg >= 0.8 (SqlCatalog V1 schema)
        )
        _ENGINES[url] = (sa.create_engine(url), table)
    return _ENGINES[url]


def _error(url: str, e: Exception) -> TableFormatError:
    return TableFormatError(f"Iceberg catalog {url}: {type(e).__name__}: {str(e).splitlines()[0]}",
                            hint="check primary-iceberg-catalog / standby-iceberg-catalog")


def primary_rows() -> dict[Path, tuple[str, list[str]]]:
    """Table directory -> (metadata_location, identifier: namespace parts and name) of every
    row of the primary's catalog."""
    if CONFIG.primary is None:
        return {}
    import sqlalchemy as sa

    engine, table = _tables(CONFIG.primary)
    try:
        with engine.connect() as con:
            rows = con.execute(sa.select(table.c.metadata_location, table.c.table_namespace,
                                         table.c.table_name)
                               .where(table.c.catalog_name == CONFIG.name)).all()
    except sa.exc.SQLAlchemyError as e:
        raise _error(CONFIG.primary, e) from None
    out: dict[Path, tuple[str, list[str]]] = {}
    for loc, ns, tname in rows:
        path = local_path(str(loc or ""))
        if path is not None and Path(path).parent.name == META_DIR:
            out[Path(os.path.normpath(path)).parent.parent] = (str(loc), [*str(ns).split("."), str(tname)])
    return out


def primary_pointer(table_dir: Path) -> str | None:
    """The table-relative metadata file the primary's catalog names for `table_dir`."""
    row = primary_rows().get(Path(os.path.normpath(table_dir)))
    if row is None:
        return None
    return f"{META_DIR}/{Path(str(local_path(row[0]))).name}"


def primary_identifier(table_dir: Path) -> list[str] | None:
    """The identifier (namespace parts, then the name) of `table_dir`'s row in the primary's
    catalog; None for a table no row names (a directory table)."""
    row = primary_rows().get(Path(os.path.normpath(table_dir)))
    return None if row is None else row[1]


def _standby_identifier(name: str, ident: list[str] | None) -> tuple[str, str]:
    """(namespace, table name) of the standby's row: the primary's identifier, checked, or
    drsync's name when the primary sent none."""
    if ident is None:
        ns, _, tname = name.rpartition(".")
        return ns, tname
    if len(ident) < 2 or not all(
            isinstance(p, str) and 0 < len(p) <= 255 and "." not in p
            and not any(ord(c) < 32 or ord(c) == 127 for c in p) for p in ident):
        raise TableFormatError(
            f"table {name}: the set names its catalog identifier {ident!r}, which is not a "
            "namespace and a table name (each part 1-255 characters, no dot, no control "
            "character)", hint="the set is damaged or was not written by drsync: take a new "
            "backup on the primary")
    return ".".join(ident[:-1]), ident[-1]


def _in_metadata_of(location: str, table_dir: Path) -> bool:
    path = local_path(location)
    return path is not None and \
        Path(os.path.normpath(path)).parent == Path(os.path.normpath(table_dir / META_DIR))


def register(table_dir: Path, name: str, metadata_rel: str, ident: list[str] | None = None) -> None:
    """Point the standby catalog's row of this table at the installed metadata, in one
    transaction: the row of `ident` (the primary's identifier), or with none the row that
    names this table's metadata already (else one of drsync's `name`). A row of this table
    under another identifier (the primary renamed the table, or a row an older drsync named)
    is renamed rather than left behind naming metadata that will be deleted; a row is
    switched only if it still holds what it held when read."""
    if CONFIG.standby is None:
        return
    import sqlalchemy as sa

    engine, table = _tables(CONFIG.standby)
    new = str(table_dir / metadata_rel)
    c = table.c

    def key(ns: str, tname: str) -> Any:
        return (c.catalog_name == CONFIG.name) & (c.table_namespace == ns) & (c.table_name == tname)

    try:
        table.metadata.create_all(engine, checkfirst=True)
        with engine.begin() as con:
            in_dir = c.metadata_location.startswith(str(table_dir / META_DIR) + "/", autoescape=True)
            mine = [(str(r[0]), str(r[1]), str(r[2])) for r in con.execute(
                sa.select(c.table_namespace, c.table_name, c.metadata_location).where(
                    (c.catalog_name == CONFIG.name) & in_dir)) if _in_metadata_of(str(r[2]), table_dir)]
            if ident is None and mine:
                ns, tname = mine[0][0], mine[0][1]
            else:
                ns, tname = _standby_identifier(name, ident)
            old = con.execute(sa.select(c.metadata_location).where(key(ns, tname))).scalar_one_or_none()
            if old == new:
                return
            if old is not None and not _in_metadata_of(str(old), table_dir):
                # never take over a row another table holds (a local table of the standby's
                # catalog, or a primary naming an identifier that is not its own)
                raise TableFormatError(
                    f"table {name}: the standby catalog's row {ns}.{tname} names {old}, not this "
                    f"table's metadata ({table_dir / META_DIR}): another table holds that identifier",
                    hint="drop or rename that row in the standby's catalog (standby-iceberg-catalog), "
                         "then run restore again")
            if old is None and mine:  # this table's row under another identifier: rename it
                was_ns, was_name, was = mine[0]
                done = con.execute(table.update().where(key(was_ns, was_name) & (c.metadata_location == was))
                                   .values(table_namespace=ns, table_name=tname, metadata_location=new,
                                           previous_metadata_location=was))
            elif old is None:
                row = {"catalog_name": CONFIG.name, "table_namespace": ns, "table_name": tname,
                       "metadata_location": new, "previous_metadata_location": None}
                if "iceberg_type" in {col["name"] for col in sa.inspect(con).get_columns("iceberg_tables")}:
                    row["iceberg_type"] = "TABLE"
                con.execute(table.insert().values(**row))
                return
            else:
                done = con.execute(table.update().where(key(ns, tname) & (c.metadata_location == old))
                                   .values(metadata_location=new, previous_metadata_location=old))
            if done.rowcount != 1:
                raise TableFormatError(f"table {name}: the standby catalog's row changed while "
                                       "drsync switched it; run restore again")
    except sa.exc.SQLAlchemyError as e:
        raise _error(CONFIG.standby, e) from None
