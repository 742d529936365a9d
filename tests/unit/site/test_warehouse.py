"""drsync.site.warehouse: which directories are tables."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from drsync.primary.roundindex import log_signature
from drsync.site.layout import DRSYNC_DIR
from drsync.site.warehouse import TableRef, discover_tables, scan_tables


def make_table(path: Path) -> None:
    (path / "_delta_log").mkdir(parents=True)
    (path / "_delta_log" / "00000000000000000000.json").write_text("{}\n")


def test_discover_finds_exactly_three_level_tables(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    for rel in ["sales/public/orders", "sales/public/customers", "sales/eu/orders",
                "hr/core/people"]:
        make_table(wh / rel)
    write_deltalake(str(wh / "hr" / "core" / "real"), pa.table({"v": [1]}))  # a real writer
    # not tables
    make_table(wh / "sales" / "toplevel_schema_table")  # two levels: a schema dir
    make_table(wh / "sales" / "public" / "orders" / "nested")  # inside a table
    make_table(wh / "sales" / "public" / "archive" / "old" / "t")  # four levels
    (wh / "sales" / "public" / "not_delta" / "part=1").mkdir(parents=True)
    (wh / "sales" / "public" / "not_delta" / "x.parquet").write_bytes(b"PAR1")
    (wh / "sales" / "public" / "log_is_file").mkdir()
    (wh / "sales" / "public" / "log_is_file" / "_delta_log").write_text("")
    (wh / "sales" / "public" / "a_file").write_text("")
    # drsync's own directory and hidden or underscore directories at every level
    make_table(wh / DRSYNC_DIR / "barriers" / "x")
    make_table(wh / ".trash" / "public" / "orders")
    make_table(wh / "sales" / ".snapshots" / "orders")
    make_table(wh / "sales" / "public" / ".orders_tmp")
    make_table(wh / "sales" / "public" / "_staging")
    found = discover_tables(wh)
    assert [t.name for t in found] == [
        "hr.core.people", "hr.core.real", "sales.eu.orders", "sales.public.customers",
        "sales.public.orders",
    ]
    # The round's one-pass discovery finds the same tables, each with its log signature.
    scanned = scan_tables(wh)
    assert [t for t, _ in scanned] == found
    assert [sig for _, sig in scanned] == [log_signature(t.path(wh)) for t in found]
    assert all(sig is not None and sig.startswith("delta:") for _, sig in scanned)


def test_scan_agrees_with_discover_in_the_hive_layout(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    for rel in ["events", "sales.db/orders", "default.db/not_a_db_table", "plain/orders"]:
        make_table(wh / rel)
    (wh / "sales.db" / "empty").mkdir()
    found = discover_tables(wh, "hive")
    assert [t.name for t in found] == ["default.events", "sales.orders"]
    assert [t for t, _ in scan_tables(wh, "hive")] == found


def test_a_table_with_an_unreadable_log_is_found_without_a_signature(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    make_table(wh / "db" / "s" / "t")
    log = wh / "db" / "s" / "t" / "_delta_log"
    log.chmod(0o300)  # a directory one can stat but not list (root lists anyway: then signed)
    try:
        [(ref, sig)] = scan_tables(wh)
    finally:
        log.chmod(0o755)
    assert ref.name == "db.s.t"
    assert sig is None or os.access(log, os.R_OK)


def test_symlinked_dirs_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    make_table(outside / "s" / "t")
    wh = tmp_path / "wh"
    (wh / "db").mkdir(parents=True)
    (wh / "linkdb").symlink_to(outside, target_is_directory=True)
    (wh / "db" / "s").mkdir()
    (wh / "db" / "s" / "linked").symlink_to(outside / "s" / "t", target_is_directory=True)
    assert discover_tables(wh) == []


def test_missing_or_empty_warehouse(tmp_path: Path) -> None:
    assert discover_tables(tmp_path / "absent") == []
    (tmp_path / "empty").mkdir()
    assert discover_tables(tmp_path / "empty") == []
    (tmp_path / "file").write_text("")
    assert discover_tables(tmp_path / "file") == []


def test_table_ref() -> None:
    ref = TableRef.parse("sales.public.orders")
    assert ref == TableRef("sales", "public", "orders")
    assert ref.name == "sales.public.orders"
    assert ref.relpath == "sales/public/orders"
    assert ref.path(Path("/wh")) == Path("/wh/sales/public/orders")
