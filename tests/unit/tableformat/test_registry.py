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
    assert [f.name for f in formats()] == ["delta"]
    assert isinstance(get("delta"), DeltaFormat)


def test_format_of_a_delta_table_and_of_a_plain_directory(tmp_path: Path) -> None:
    write_deltalake(str(tmp_path / "t"), pa.table({"x": [1, 2]}))
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.parquet").write_bytes(b"not a table")
    assert format_of(tmp_path / "t") is get("delta")
    assert format_of(tmp_path / "plain") is None
    assert format_of(tmp_path / "absent") is None
    with pytest.raises(TableFormatError, match=r"plain: not a Delta table"):
        require_format(tmp_path / "plain")


def test_unknown_format_refused_with_the_known_ones() -> None:
    with pytest.raises(TableFormatError, match=r"unknown table format 'hudi' \(this drsync knows: delta\)"):
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


class PlainFormat:
    name = "plain"
    title = "plain directory"

    def is_table(self, table_dir: Path) -> bool:
        return (table_dir / "PLAIN").is_file()

    def role(self, kind: str) -> FileRole:
        return FileRole.DATA


FORMAT = PlainFormat()
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
        sys.modules.pop("drsync.tableformat.plain", None)


def test_a_new_format_package_is_found_without_a_registry_line(
        extra_format_dir: Path, tmp_path: Path) -> None:
    """The bar of issue 12: adding a format is one new package (exposing FORMAT)."""
    (extra_format_dir / "plain").mkdir()
    (extra_format_dir / "plain" / "__init__.py").write_text(STUB)
    assert [f.name for f in formats()] == ["delta", "plain"]
    table = tmp_path / "t"
    table.mkdir()
    (table / "PLAIN").write_text("")
    assert format_of(table) is get("plain")
    with pytest.raises(TableFormatError, match="not a Delta or plain directory table"):
        require_format(tmp_path)
