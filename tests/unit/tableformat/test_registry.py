"""drsync.tableformat: the registry every caller gets a format from."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

import drsync.tableformat as registry
from drsync.errors import TableFormatError
from drsync.tableformat import FileRole, format_of, formats, get, require_format
from drsync.tableformat.delta import DeltaFormat


def test_delta_is_registered() -> None:
    assert "delta" in [f.name for f in formats()]
    assert isinstance(get("delta"), DeltaFormat)


def test_format_of_a_delta_table_and_of_a_plain_directory(tmp_path: Path) -> None:
    write_deltalake(str(tmp_path / "t"), pa.table({"x": [1, 2]}))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.parquet").write_bytes(b"not a table")
    assert format_of(tmp_path / "t") is get("delta")
    assert format_of(tmp_path / "other") is None
    assert format_of(tmp_path / "absent") is None
    with pytest.raises(TableFormatError, match=r"other: not a Delta( or .+)? table"):
        require_format(tmp_path / "other")


def test_unknown_format_refused_with_the_known_ones() -> None:
    with pytest.raises(TableFormatError, match=r"unknown table format 'hudi' \(this drsync knows: .*delta"):
        get("hudi")


def test_delta_file_roles() -> None:
    delta = get("delta")
    assert {k: delta.role(k) for k in delta.kinds} == {
        "data": FileRole.DATA, "dv": FileRole.DATA, "cdc": FileRole.DATA,
        "commit": FileRole.COMMIT, "last_checkpoint": FileRole.POINTER,
        "checkpoint": FileRole.LOG, "sidecar": FileRole.LOG, "crc": FileRole.LOG,
        "compacted": FileRole.LOG,
    }
    assert not delta.rewrites_on_install


STUB = '''
from pathlib import Path

from drsync.tableformat.base import FileRole


class StubFormat:
    name = "stubfmt"
    title = "stub"

    def is_table(self, table_dir: Path) -> bool:
        return (table_dir / "STUB").is_file()

    def role(self, kind: str) -> FileRole:
        return FileRole.DATA


FORMAT = StubFormat()
'''


@pytest.fixture
def extra_format_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory added to drsync.tableformat's package path, as a new format package
    would be; the registry's cache and the imported stub are forgotten afterwards."""
    extra = tmp_path / "formats"
    extra.mkdir()
    registry.__path__.append(str(extra))
    registry._FORMATS = None
    try:
        yield extra
    finally:
        registry.__path__.remove(str(extra))
        registry._FORMATS = None
        sys.modules.pop("drsync.tableformat.stubfmt", None)


def test_a_new_format_package_is_found_without_a_registry_line(
        extra_format_dir: Path, tmp_path: Path) -> None:
    """The bar of issue 12: adding a format is one new package (exposing FORMAT)."""
    before = [f.name for f in formats()]
    registry._FORMATS = None
    (extra_format_dir / "stubfmt").mkdir()
    (extra_format_dir / "stubfmt" / "__init__.py").write_text(STUB)
    assert [f.name for f in formats()] == sorted([*before, "stubfmt"])
    table = tmp_path / "t"
    table.mkdir()
    (table / "STUB").write_text("")
    assert format_of(table) is get("stubfmt")
    with pytest.raises(TableFormatError, match=r"not a Delta or (.+ or )?stub table"):
        require_format(tmp_path)
