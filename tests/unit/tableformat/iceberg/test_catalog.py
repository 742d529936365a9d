"""catalog: the primary catalog's identifier of a table, and the standby row named by it (real
SQLite catalogs, the primary's written by pyiceberg); an identifier the standby cannot use as
a namespace and a name is refused by name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pyiceberg.catalog.sql import SqlCatalog

from drsync.errors import TableFormatError
from drsync.tableformat.iceberg import catalog
from tests.iceberg_helpers import batch


@pytest.fixture
def config(tmp_path: Path) -> Iterator[catalog.CatalogConfig]:
    saved = catalog.CONFIG
    catalog.CONFIG = catalog.CatalogConfig(f"sqlite:///{tmp_path}/p.db", f"sqlite:///{tmp_path}/s.db", "prod")
    try:
        yield catalog.CONFIG
    finally:
        catalog.CONFIG = saved


def _rows(url: str) -> list[tuple[str, str, str]]:
    with sa.create_engine(url).connect() as con:
        return [tuple(r) for r in con.execute(sa.text(
            "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables"))]


def test_the_standby_row_has_the_primary_identifier(config: catalog.CatalogConfig, tmp_path: Path) -> None:
    assert config.primary is not None and config.standby is not None
    pcat = SqlCatalog("prod", uri=config.primary, warehouse=f"file://{tmp_path}/unused")
    pcat.create_namespace("sales.eu")
    src = tmp_path / "primary" / "db" / "s" / "orders"
    pcat.create_table("sales.eu.orders", schema=batch(0, 1).schema, location=str(src)).append(batch(0, 2))
    ident = catalog.primary_identifier(src)
    assert ident == ["sales", "eu", "orders"]
    assert catalog.primary_identifier(tmp_path / "primary" / "db" / "s" / "other") is None
    dst = tmp_path / "standby" / "db" / "s" / "orders"
    catalog.register(dst, "db.s.orders", "metadata/00001-a.metadata.json", ident)
    catalog.register(dst, "db.s.orders", "metadata/00002-b.metadata.json", ident)  # switched
    assert _rows(config.standby) == [("sales.eu", "orders", f"{dst}/metadata/00002-b.metadata.json")]
    scat = SqlCatalog("prod", uri=config.standby)
    assert scat.list_tables("sales.eu") == [("sales", "eu", "orders")]


def test_without_a_primary_row_the_row_has_drsyncs_name(config: catalog.CatalogConfig,
                                                        tmp_path: Path) -> None:
    assert config.standby is not None
    catalog.register(tmp_path / "t", "db.s.t", "metadata/v1.metadata.json")
    assert _rows(config.standby) == [("db.s", "t", f"{tmp_path}/t/metadata/v1.metadata.json")]


@pytest.mark.parametrize("ident", [["orders"], ["db", ""], ["db", "a.b"], ["db", "x\n"], ["db", "x" * 256]])
def test_an_unusable_identifier_is_refused_by_name(ident: list[str], config: catalog.CatalogConfig,
                                                   tmp_path: Path) -> None:
    assert config.standby is not None
    with pytest.raises(TableFormatError) as e:
        catalog.register(tmp_path / "t", "db.s.t", "metadata/v1.metadata.json", ident)
    assert "db.s.t" in str(e.value) and "catalog identifier" in str(e.value) and e.value.hint
    assert not Path(config.standby.removeprefix("sqlite:///")).exists() or _rows(config.standby) == []


def test_a_row_of_another_table_is_never_taken_over(config: catalog.CatalogConfig, tmp_path: Path) -> None:
    """A local table of the standby's catalog holds `sales.orders`: a set naming that identifier
    for another directory is refused by name and the local row stays as it was."""
    assert config.standby is not None
    local = tmp_path / "standby" / "local" / "orders"
    catalog.register(local, "local.x.orders", "metadata/v1.metadata.json", ["sales", "orders"])
    before = _rows(config.standby)
    with pytest.raises(TableFormatError) as e:
        catalog.register(tmp_path / "standby" / "db" / "s" / "orders", "db.s.orders",
                         "metadata/v2.metadata.json", ["sales", "orders"])
    assert "db.s.orders" in str(e.value) and "sales.orders" in str(e.value) and e.value.hint
    assert _rows(config.standby) == before


def test_a_row_of_this_table_under_another_identifier_is_renamed(config: catalog.CatalogConfig,
                                                                 tmp_path: Path) -> None:
    """A row an older drsync named after the directory (`db.s`, `orders`) becomes the primary
    identifier's row, not a second row left naming metadata that will be deleted; a later
    switch without an identifier (a role change taking the table back) finds that row."""
    assert config.standby is not None
    dst = tmp_path / "standby" / "db" / "s" / "orders"
    catalog.register(dst, "db.s.orders", "metadata/00001-a.metadata.json")
    catalog.register(dst, "db.s.orders", "metadata/00002-b.metadata.json", ["sales", "orders"])
    assert _rows(config.standby) == [("sales", "orders", f"{dst}/metadata/00002-b.metadata.json")]
    catalog.register(dst, "db.s.orders", "metadata/00001-a.metadata.json")
    assert _rows(config.standby) == [("sales", "orders", f"{dst}/metadata/00001-a.metadata.json")]
