"""drsync.site.names: the one parser/quoter of object names, and the hive layout's discovery
(issue 16, items 6 and 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drsync.errors import ConfigError, DrsyncError, UnsafePathError
from drsync.sets.manifest import validate_table_name
from drsync.site.names import PLAIN_TABLE_NAME, format_name, parse_name, relpath_of, split_names
from drsync.site.warehouse import TableRef, discover_tables


def test_quoting_where_needed() -> None:
    assert format_name(("sales", "public", "orders")) == "sales.public.orders"
    assert format_name(("db", "delta-0.8.0", "t")) == "db.`delta-0.8.0`.t"
    assert format_name(("db", "a`b c")) == "db.`a``b c`"
    assert parse_name("db.`delta-0.8.0`.t") == ["db", "delta-0.8.0", "t"]
    assert parse_name("`a``b`.c") == ["a`b", "c"]


@pytest.mark.parametrize("bad", ["db..t", "db.`x", "db.`x`y.t", "db.a b.t", "a.b.c.d", ".a.b", "db._x.t",
                                 "db.`../x`.t", "db.`a/b`.t", "db.`\x01`.t", "db.", ""])
def test_bad_names_are_one_clear_error(bad: str) -> None:
    with pytest.raises(DrsyncError) as e:
        parse_name(bad, "table", counts=(2, 3))
    assert "\n" not in e.value.message and e.value.message


def test_path_tricks_are_unsafe_path_errors() -> None:
    for bad in ("db.`..`.t", "db.`a/b`.t", "db/x.s.t"):
        with pytest.raises(UnsafePathError):
            parse_name(bad, "table")


def test_lists_split_outside_backticks() -> None:
    assert split_names("s.a, `x,y`.b ,c") == ["s.a", "`x,y`.b", "c"]


def test_paths_of_both_layouts() -> None:
    assert relpath_of("db.s.t") == "db/s/t"
    assert relpath_of("sales.orders") == "sales.db/orders"
    assert relpath_of("default.`delta-0.8.0`") == "delta-0.8.0"
    assert TableRef.parse("`my.lake`.events").path(Path("/w")) == Path("/w/my.lake.db/events")
    assert TableRef.parse("db.`a.b`.c") == TableRef("db", "a.b", "c")


_PART = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\\0"),
                min_size=1, max_size=12).filter(lambda p: p.strip() == p and not p.startswith((".", "_")))


@given(st.lists(_PART, min_size=1, max_size=3))
def test_any_directory_names_round_trip(parts: list[str]) -> None:
    assert parse_name(format_name(parts)) == parts


def test_hive_discovery(tmp_path: Path) -> None:
    for rel in ("visits", "sales.db/orders", "sales.db/orders.v2", "x.y.db/t"):
        (tmp_path / rel / "_delta_log").mkdir(parents=True)
    (tmp_path / "sales.db" / "junk").mkdir()  # no log: not a table
    (tmp_path / "_drsync" / "barriers").mkdir(parents=True)
    names = sorted(t.name for t in discover_tables(tmp_path, "hive"))
    assert names == ["`x.y`.t", "default.visits", "sales.`orders.v2`", "sales.orders"]
    assert discover_tables(tmp_path, "dws") == []  # the same tree is not a dws warehouse


def test_publication_names_may_start_with_underscore(tmp_path: Path) -> None:
    from drsync.publications.store import create_publication

    pub = create_publication(tmp_path, "_pub_for_fine_dr", "db", schemas=["s1"], tables=["s2.t"])
    assert pub.covers("db", "s1", "any") and pub.covers("db", "s2", "t") and not pub.covers("db", "s2", "u")
    with pytest.raises(ConfigError):
        create_publication(tmp_path, "___", "db", all_tables=True)


@given(st.text(alphabet="aZ9_$@+=~-.`/ \\\x01\x7fé", max_size=14))
def test_plain_table_name_fast_path_accepts_only_what_the_full_parse_accepts(text: str) -> None:
    """The regex the standby checks barrier-map names with must never accept a name the full
    parse refuses or would write differently."""
    if PLAIN_TABLE_NAME.fullmatch(text):
        assert format_name(parse_name(text, counts=(2, 3))) == text


def test_plain_table_name_fast_path_edges() -> None:
    long_ok, too_long = "a" * 255, "a" * 256
    for name in ("db.s.t", "db.t", "a-b.$c.d=e", f"db.s.{long_ok}", "0.1.2"):
        assert PLAIN_TABLE_NAME.fullmatch(name) and validate_table_name(name) == name
    for name in ("t", "a.b.c.d", "db._s.t", "db..t", "db.s.", ".db.t", f"db.s.{too_long}",
                 "db.s.t ", "db.`s`.t", "db.s/x.t", "é.s.t"):
        assert not PLAIN_TABLE_NAME.fullmatch(name), name
    with pytest.raises(DrsyncError):
        validate_table_name(f"db.s.{too_long}")
    with pytest.raises(DrsyncError):
        validate_table_name("db._s.t")
    assert validate_table_name("db.`a.b`.t") == "db.`a.b`.t"  # not plain: the full parse, still valid
