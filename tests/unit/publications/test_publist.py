"""pub.list and object-list parsers: any input either parses or raises one ConfigError naming
file:line; never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drsync.errors import ConfigError
from drsync.publications.publist import parse_object_list, parse_pub_list


def _file(tmp: Path, data: bytes) -> Path:
    p = tmp / "list"
    p.write_bytes(data)
    return p


def test_pub_list_comments_blanks_and_order(tmp_path: Path) -> None:
    p = _file(tmp_path, b"# publications\n\nsales.p1  # the sales one\n*.all\nsales.p1\n hr.p2 \n")
    assert parse_pub_list(p) == ["sales.p1", "*.all", "hr.p2"]


def test_object_list_tables_and_schemas(tmp_path: Path) -> None:
    p = _file(tmp_path, b"db.s.t\ndb.s\n# c\ndb.s.t\n")
    assert parse_object_list(p) == ["db.s.t", "db.s"]


@pytest.mark.parametrize("line", ["db", "a.b.c", "../x.y", "/abs.p", "db/x.p", "a..b", ".a.b", "a b.c",
                                  "*.x.y", "db.*"])
def test_pub_list_bad_line_names_file_and_line(tmp_path: Path, line: str) -> None:
    p = _file(tmp_path, f"ok.pub\n# fine\n{line}\n".encode())
    with pytest.raises(ConfigError) as e:
        parse_pub_list(p)
    assert f"{p}:3" in e.value.message


@pytest.mark.parametrize("line", ["db", "a.b.c.d", "../etc.x", "/etc/passwd", "db.s/t", "db..t",
                                  "*.s.t", "db.s.t\0"])
def test_object_list_bad_line_names_file_and_line(tmp_path: Path, line: str) -> None:
    p = _file(tmp_path, f"db.s.t\n{line}\n".encode())
    with pytest.raises(ConfigError) as e:
        parse_object_list(p)
    assert f"{p}:2" in e.value.message


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    p = _file(tmp_path, b"db.p\n\xff\xfe\n")
    with pytest.raises(ConfigError, match=":2: not UTF-8"):
        parse_pub_list(p)
    with pytest.raises(ConfigError, match="cannot read"):
        parse_object_list(tmp_path / "absent")


_LINE = st.one_of(
    st.text(alphabet="ab.*/#\\ \t\0_-$..é", max_size=12),
    st.from_regex(r"[a-z]{1,3}(\.[a-z]{1,3}){0,3}", fullmatch=True),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=64), st.lists(_LINE, max_size=6).map(lambda ls: "\n".join(ls).encode())))
def test_any_input_parses_or_fails_with_file_and_line(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = _file(Path(d), data)
        for parse in (parse_pub_list, parse_object_list):
            try:
                names = parse(p)
            except ConfigError as e:
                assert e.message.startswith(f"{p}:"), e.message
                assert "\n" not in e.message
                continue
            for n in names:
                assert "/" not in n and ".." not in n and not n.startswith(".")
