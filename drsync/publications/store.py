"""Publications: which tables drsync protects (DESIGN §4).

A publication names, in one database (or in every database: db `*`, a drsync addition), all
tables, some schemas and/or some tables, minus what `cancel-publication` excluded. They live in
`<metadata>/publications.json`, a file of their own (not the primary's state: a running round
holds that in memory and would overwrite a concurrent change). The round reads the file once,
at the barrier; each manifest carries the snapshot so the standby holds the same file, under
the same name, ready for a role change.

`publications.json` absent means "never configured": a round then protects nothing and
desynchronises nothing (upgrade safety). Present with no publication means "nothing is
protected any more", and every inventoried table is desynchronised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ValidationError

from drsync.errors import ConfigError, UnsafePathError
from drsync.fsutil import atomic_write_json, ensure_dir, read_json
from drsync.site.layout import LOCK_DIR, PUBLICATIONS_FILE
from drsync.site.locks import operation_lock
from drsync.site.names import check_part, format_name, parse_name, quote_part, relpath_parts
from drsync.tableformat import format_of

ALL_DATABASES = "*"
# A publication name (it is also a pub.list entry's second part, so never a '.'): letters,
# digits and _$@+=~,- ; it may start with '_', as the DWS documentation's `_pub_for_fine_dr`.
_PUBLICATION_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_$@+=~,-]{0,127}$")


def check_publication_name(name: str, where: str = "") -> str:
    if not _PUBLICATION_NAME.match(name) or name.strip("_") == "":
        loc = f"{where}: " if where else ""
        if name in ("", ".", "..") or any(c in name for c in "/\\\0"):
            raise UnsafePathError(f"{loc}publication name {name!r} is not a plain name "
                                  "(path tricks are refused)")
        raise ConfigError(f"{loc}publication name {name!r} is not valid: letters, digits and _$@+=~,- "
                          "only, at most 128 characters")
    return name


def check_component(part: str, what: str, where: str = "") -> str:
    """A database, schema or table name part (names.check_part): any directory name."""
    return check_part(part, what, where)


def split_name(name: str, parts: int, what: str, where: str = "") -> list[str]:
    """`name` (parts quoted in backticks where needed, names.py) into exactly `parts` parts."""
    shape = {1: "one name", 2: "schema.table", 3: "db.schema.table"}.get(parts, "")
    return parse_name(name, what, where, counts=(parts,), shape=shape)


class Publication(BaseModel):
    name: str
    db: str  # a database, or "*" for every database
    all_tables: bool = False
    schemas: list[str] = []  # whole schemas
    tables: list[str] = []  # "schema.table"
    excluded: list[str] = []  # "db.schema" or "db.schema.table", by cancel-publication

    @property
    def key(self) -> str:
        return f"{self.db if self.db == ALL_DATABASES else quote_part(self.db)}.{self.name}"

    def _excludes(self, db: str, schema: str, table: str) -> bool:
        if not self.excluded:  # the usual case: no name to build (every table, every round)
            return False
        return ((bool(schema) and format_name((db, schema)) in self.excluded)
                or format_name(_parts(db, schema, table)) in self.excluded)

    def covers(self, db: str, schema: str, table: str) -> bool:
        """Does it cover table db.schema.table (schema "" in the hive layout: db.table)?"""
        if self.db not in (ALL_DATABASES, db) or self._excludes(db, schema, table):
            return False
        if self.all_tables or (bool(schema) and schema in self.schemas):
            return True
        return format_name(_parts(schema, table)) in self.tables

    def describe(self) -> str:
        what = ["all tables"] if self.all_tables else []
        what += [f"schema {s}" for s in self.schemas] + [f"table {t}" for t in self.tables]
        text = f"{self.key}: " + (", ".join(what) or "nothing")
        if self.excluded:
            text += " except " + ", ".join(self.excluded)
        return text


class Publications(BaseModel):
    publications: list[Publication] = []

    def find(self, name: str) -> Publication | None:
        """By `name` (unique) or `db.name`."""
        for p in self.publications:
            if name in (p.name, p.key):
                return p
        return None

    def selected(self, keys: list[str] | None) -> list[Publication]:
        """The publications a round uses: those `keys` (from pub.list) name, or all."""
        if keys is None:
            return list(self.publications)
        chosen = [p for p in self.publications if p.key in keys]
        return chosen

    def covers(self, pubs: Iterable[Publication], db: str, schema: str, table: str) -> bool:
        return any(p.covers(db, schema, table) for p in pubs)


def _parts(*parts: str) -> tuple[str, ...]:
    return tuple(p for p in parts if p)  # the hive layout's tables have no schema part


def publications_path(meta: Path) -> Path:
    return meta / PUBLICATIONS_FILE


def load_publications(meta: Path) -> Publications | None:
    """The stored publications, or None if they were never configured on this site."""
    path = publications_path(meta)
    if not path.exists():
        return None
    try:
        return Publications.model_validate(read_json(path))
    except (ValueError, ValidationError) as e:
        raise ConfigError(f"{path} is not a valid publications file: {str(e).splitlines()[0]}",
                          hint="restore it from the standby's copy (same name and format)") from None


def save_publications(meta: Path, pubs: Publications) -> None:
    ensure_dir(meta)
    atomic_write_json(publications_path(meta), pubs.model_dump())


@contextmanager
def editing(meta: Path) -> Iterator[Publications]:
    """Read-modify-write of publications.json under its own lock (CLI commands only)."""
    with operation_lock(meta / LOCK_DIR, "publication"):
        pubs = load_publications(meta) or Publications()
        yield pubs
        save_publications(meta, pubs)


def create_publication(
    meta: Path, name: str, db: str, *, all_tables: bool = False,
    schemas: list[str] | None = None, tables: list[str] | None = None, hive: bool = False,
) -> Publication:
    """`schemas` and `tables` may be given together (`FOR TABLES IN SCHEMA s1, TABLE s2.t`);
    with `hive` (warehouse-layout=hive) tables are plain table names and there are no schemas."""
    check_publication_name(name)
    if db != ALL_DATABASES:
        check_component(db, "database")
    schemas, tables = schemas or [], tables or []
    if all_tables == bool(schemas or tables):
        raise ConfigError("choose --all-tables, or --schema and/or --table")
    if db == ALL_DATABASES and not all_tables:
        raise ConfigError("a publication of every database (--all-databases) covers all tables")
    schemas = [_schema(s, hive) for s in schemas]
    tables = [_member(t, hive) for t in tables]
    pub = Publication(name=name, db=db, all_tables=all_tables, schemas=sorted(set(schemas)),
                      tables=sorted(set(tables)))
    with editing(meta) as pubs:
        if pubs.find(name) is not None:
            raise ConfigError(f"publication {name} already exists", hint="drsync publication list")
        pubs.publications.append(pub)
    return pub


def alter_publication(
    meta: Path, name: str, *, add_tables: list[str], add_schemas: list[str],
    drop_tables: list[str], drop_schemas: list[str], hive: bool = False,
) -> Publication:
    add_tables, drop_tables = [_member(t, hive) for t in add_tables], [_member(t, hive) for t in drop_tables]
    add_schemas = [_schema(s, hive) for s in add_schemas]
    drop_schemas = [_schema(s, hive) for s in drop_schemas]
    if not (add_tables or add_schemas or drop_tables or drop_schemas):
        raise ConfigError("nothing to alter: give --add-table, --add-schema, --drop-table or --drop-schema")
    with editing(meta) as pubs:
        pub = pubs.find(name)
        if pub is None:
            raise ConfigError(f"publication {name} does not exist", hint="drsync publication list")
        dbs = [pub.db] if pub.db != ALL_DATABASES else []
        for t in add_tables:
            pub.tables = sorted(set(pub.tables) | {t})
            pub.excluded = [e for e in pub.excluded if e not in {f"{quote_part(d)}.{t}" for d in dbs}]
        for s in add_schemas:
            pub.schemas = sorted(set(pub.schemas) | {s})
            pub.excluded = [e for e in pub.excluded if e not in {f"{quote_part(d)}.{s}" for d in dbs}]
        for t in drop_tables:
            pub.tables = [x for x in pub.tables if x != t]
        for s in drop_schemas:
            pub.schemas = [x for x in pub.schemas if x != s]
    return pub


def _member(table: str, hive: bool) -> str:
    """A publication's table in canonical form: `schema.table` (dws) or `table` (hive)."""
    return format_name(split_name(table, 1 if hive else 2, "table"))


def _schema(schema: str, hive: bool) -> str:
    if hive:
        raise ConfigError(f"schema {schema!r}: warehouse-layout=hive has no schemas",
                          hint="publish tables (--table t1,t2) or the whole database (--all-tables)")
    return format_name(split_name(schema, 1, "schema"))


def drop_publication(meta: Path, name: str) -> None:
    with editing(meta) as pubs:
        pub = pubs.find(name)
        if pub is None:
            raise ConfigError(f"publication {name} does not exist", hint="drsync publication list")
        pubs.publications.remove(pub)


def publish_everything(meta: Path, name: str = "all") -> None:
    """An all-databases, all-tables publication unless one exists (demo, prepare --all-tables)."""
    with editing(meta) as pubs:
        everything = any(p.db == ALL_DATABASES and p.all_tables and not p.excluded for p in pubs.publications)
        if not everything and pubs.find(name) is None:
            pubs.publications.append(Publication(name=name, db=ALL_DATABASES, all_tables=True))


def _cancel_one(pub: Publication, obj: str, hive: bool = False) -> bool:
    """Stop `pub` covering `obj` (db.schema or db.schema.table; hive: db.table); False if it
    did not cover it."""
    parts = parse_name(obj, "object", counts=(2,) if hive else (2, 3))
    if hive:
        db, table = parts
        if pub.db not in (ALL_DATABASES, db) or obj in pub.excluded:
            return False
        member = format_name((table,))
        hit = pub.all_tables or member in pub.tables
        pub.tables = [t for t in pub.tables if t != member]
        if hit and (pub.all_tables or pub.db == ALL_DATABASES):
            pub.excluded = sorted(set(pub.excluded) | {obj})
        return hit
    db, schema = parts[0], parts[1]
    schema_name = format_name((db, schema))
    if pub.db not in (ALL_DATABASES, db) or schema_name in pub.excluded or obj in pub.excluded:
        return False
    in_schema = [t for t in pub.tables if parse_name(t, "table")[0] == schema]
    if len(parts) == 2:
        hit = pub.all_tables or schema in pub.schemas or bool(in_schema)
        pub.schemas = [s for s in pub.schemas if s != schema]
        pub.tables = [t for t in pub.tables if t not in in_schema]
    else:
        st = format_name((schema, parts[2]))
        hit = pub.all_tables or schema in pub.schemas or st in pub.tables
        pub.tables = [t for t in pub.tables if t != st]
    if hit and (pub.all_tables or schema in pub.schemas or pub.db == ALL_DATABASES):
        pub.excluded = sorted(set(pub.excluded) | {obj})
    return hit


def cancel_objects(meta: Path, warehouse: Path, objects: list[str] | None,
                   hive: bool = False) -> list[tuple[str, str]]:
    """Stop protecting `objects` (None: everything). Records intent only: the next round
    desynchronises what is no longer covered. Returns (object, reason) for those that could
    not be cancelled: unknown on the primary, or not covered by any publication."""
    failed: list[tuple[str, str]] = []
    with editing(meta) as pubs:
        if objects is None:
            pubs.publications = []  # present and empty: every replicated table is desynchronised
            return failed
        for obj in objects:
            parts = parse_name(obj, "object", counts=(2,) if hive else (2, 3))
            is_table = hive or len(parts) == 3
            where = warehouse.joinpath(*(relpath_parts(parts) if is_table else parts))
            if not (format_of(where) is not None if is_table else where.is_dir()):
                failed.append((obj, "does not exist on the primary"))
                continue
            hits = [p for p in pubs.publications if _cancel_one(p, obj, hive)]
            if not hits:
                failed.append((obj, "not covered by any publication"))
    return failed
