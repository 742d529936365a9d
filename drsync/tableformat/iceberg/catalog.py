"""pyiceberg SQL catalogs: the primary's catalog row as a table's pointer, the standby's row
switched once the new metadata JSON is in place.

The schema is pyiceberg's `iceberg_tables` (catalog_name, table_namespace, table_name,
metadata_location, previous_metadata_location). On the primary, a directory without
version-hint.text is an Iceberg table when a row's metadata_location lies in its `metadata/`.
On the standby, the row of `db.schema.table` (namespace `db.schema`) is inserted, or updated
in one transaction only if it still holds the location drsync last saw (never a writer's).
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


def primary_rows() -> dict[Path, str]:
    """Table directory -> metadata_location of every row of the primary's catalog."""
    if CONFIG.primary is None:
        return {}
    import sqlalchemy as sa

    engine, table = _tables(CONFIG.primary)
    try:
        with engine.connect() as con:
            rows = con.execute(sa.select(table.c.metadata_location)
                               .where(table.c.catalog_name == CONFIG.name)).all()
    except sa.exc.SQLAlchemyError as e:
        raise _error(CONFIG.primary, e) from None
    out: dict[Path, str] = {}
    for (loc,) in rows:
        path = local_path(str(loc or ""))
        if path is not None and Path(path).parent.name == META_DIR:
            out[Path(os.path.normpath(path)).parent.parent] = str(loc)
    return out


def primary_pointer(table_dir: Path) -> str | None:
    """The table-relative metadata file the primary's catalog names for `table_dir`."""
    loc = primary_rows().get(Path(os.path.normpath(table_dir)))
    if loc is None:
        return None
    return f"{META_DIR}/{Path(str(local_path(loc))).name}"


def register(table_dir: Path, name: str, metadata_rel: str) -> None:
    """Point the standby catalog's row of `name` at the installed metadata (insert it, or
    switch it only if it still holds what it held when read, in one transaction)."""
    if CONFIG.standby is None:
        return
    import sqlalchemy as sa

    engine, table = _tables(CONFIG.standby)
    ns, _, tname = name.rpartition(".")
    new = str(table_dir / metadata_rel)
    key = ((table.c.catalog_name == CONFIG.name) & (table.c.table_namespace == ns)
           & (table.c.table_name == tname))
    try:
        table.metadata.create_all(engine, checkfirst=True)
        with engine.begin() as con:
            old = con.execute(sa.select(table.c.metadata_location).where(key)).scalar_one_or_none()
            if old == new:
                return
            if old is None:
                row = {"catalog_name": CONFIG.name, "table_namespace": ns, "table_name": tname,
                       "metadata_location": new, "previous_metadata_location": None}
                if "iceberg_type" in {c["name"] for c in sa.inspect(con).get_columns("iceberg_tables")}:
                    row["iceberg_type"] = "TABLE"
                con.execute(table.insert().values(**row))
                return
            done = con.execute(table.update().where(key & (table.c.metadata_location == old))
                               .values(metadata_location=new, previous_metadata_location=old))
            if done.rowcount != 1:
                raise TableFormatError(f"table {name}: the standby catalog's row changed while "
                                       "drsync switched it; run restore again")
    except sa.exc.SQLAlchemyError as e:
        raise _error(CONFIG.standby, e) from None
