"""The fence stops an unprivileged writer cleanly and is undone exactly; root is not stopped."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from drsync.roles.fence import dir_modes, fence_table, make_readonly, make_writable, unfence_table
from tests.helpers import as_owner_of, duck, latest_version, rows, tree


def _batch(i: int) -> pa.Table:
    return pa.table({"id": pa.array([i], pa.int64()), "part": [f"p{i % 2}"]})


@pytest.fixture
def table() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="drsync-fence-") as tmp:  # pytest's tmp is root-only
        base = Path(tmp)
        os.chmod(base, 0o755)
        t = base / "db" / "s" / "t"
        write_deltalake(str(t), _batch(0), partition_by=["part"])
        write_deltalake(str(t), _batch(1), partition_by=["part"], mode="append")
        yield t
        make_writable(t)


def test_fenced_table_refuses_an_unprivileged_writer_and_unfences_exactly(table: Path) -> None:
    modes = dir_modes(table)
    assert fence_table(table) == modes
    before = tree(table)
    with as_owner_of(table.parent), pytest.raises(Exception, match="ermission denied"):
        write_deltalake(str(table), _batch(2), partition_by=["part"], mode="append")
    assert tree(table) == before  # not even a data file landed
    assert len(rows(duck(), table)) == 2  # still readable
    unfence_table(table, modes)
    assert dir_modes(table) == modes
    with as_owner_of(table.parent):
        write_deltalake(str(table), _batch(2), partition_by=["part"], mode="append")
    assert latest_version(table) == 2


def test_root_is_not_stopped_by_a_fence(table: Path) -> None:
    """Documented limit: mode bits do not stop root. The switchover detects such a commit
    (the version moved after the fence) and rolls back instead of losing it."""
    fence_table(table)
    if os.geteuid() == 0:
        write_deltalake(str(table), _batch(3), partition_by=["part"], mode="append")
        assert latest_version(table) == 2
    else:  # an unprivileged test run: the fence holds for its own writes
        with pytest.raises(Exception, match="ermission denied"):
            write_deltalake(str(table), _batch(3), partition_by=["part"], mode="append")


def test_readonly_and_writable_modes(table: Path) -> None:
    make_readonly(table)
    assert all(m & 0o222 == 0 for m in dir_modes(table).values())
    make_writable(table)
    assert set(dir_modes(table).values()) == {0o755}
    files = [Path(d, f) for d, _, fs in os.walk(table) for f in fs]
    assert {os.stat(f).st_mode & 0o777 for f in files} == {0o644}
