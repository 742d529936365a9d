"""drill.py in-process: barrier choice, a failed build leaves nothing, list beside a running drill."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drsync.config import Settings, load_settings
from drsync.demo import ROUND_WRITES, create_sample_warehouse
from drsync.errors import DrillError
from drsync.primary.round import run_backup
from drsync.roles import drill
from drsync.sets.manifest import key_time
from drsync.site.drills import held_barriers
from drsync.site.layout import LOCK_DIR
from drsync.site.locks import operation_lock
from drsync.standby.restore import run_restore
from drsync.tableformat import get as get_format
from tests.helpers import Sites
from tests.integration.test_drill import facts


@pytest.fixture
def two_barriers(sites: Sites) -> tuple[Settings, list[str]]:
    create_sample_warehouse(sites.primary, rows=10)
    s = load_settings(sites.config)
    keys = []
    for r in range(2):
        if r:
            ROUND_WRITES[0](sites.primary, r)
        keys.append(run_backup(s).key)
        run_restore(s)
    assert len(set(keys)) == 2
    return s, [k for k in keys if k]


def test_barrier_by_key_time_or_newest(two_barriers: tuple[Settings, list[str]]) -> None:
    s, (k0, k1) = two_barriers
    assert drill.resolve_barrier(s, None) == k1
    assert drill.resolve_barrier(s, k0) == k0
    local = key_time(k0).astimezone().replace(tzinfo=None)  # a time without zone is local time
    assert drill.resolve_barrier(s, local.isoformat()) == k0
    assert drill.resolve_barrier(s, key_time(k1).isoformat()) == k1
    with pytest.raises(DrillError, match="no retained barrier at or before"):
        drill.resolve_barrier(s, (key_time(k0).replace(year=2000)).isoformat())


def test_a_failed_build_leaves_nothing(two_barriers: tuple[Settings, list[str]], sites: Sites,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s, _ = two_barriers
    before = facts(sites.standby)
    fmt = get_format("delta")
    real = fmt.fork
    calls = {"n": 0}

    def failing(*args: object, **kw: bool) -> drill.ForkedTable:
        calls["n"] += 1
        if calls["n"] == 3:
            raise DrillError("table x: injected failure")
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(fmt, "fork", failing)
    with pytest.raises(DrillError, match="injected"):
        drill.start_drill(s, "f", tmp_path / "f", say=lambda _: None)
    assert calls["n"] == 3
    assert os.listdir(tmp_path) == ["sites"]  # no fork, no temp directory beside it
    assert drill.load_records(s) == []
    assert facts(sites.standby) == before  # the temp links are gone: link counts as before


def test_list_beside_a_running_drill_command(two_barriers: tuple[Settings, list[str]],
                                             tmp_path: Path) -> None:
    s, (_, k1) = two_barriers
    drill.start_drill(s, "a", tmp_path / "a", say=lambda _: None)
    with operation_lock(s.restore_metadata_destination / LOCK_DIR, "drill"):
        infos = drill.list_drills(s, say=lambda _: None)  # does not wait for, nor fail on, the lock
    assert [(i.name, i.key, i.state, i.tables) for i in infos] == [("a", k1, "ready", 10)]
    assert held_barriers(s) == {k1}
    drill.drop_drill(s, "a", say=lambda _: None)
    assert held_barriers(s) == set() and not (tmp_path / "a").exists()


def test_change_data_of_copied_commits_is_linked_too(tmp_path: Path) -> None:
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from drsync.tableformat.delta.fork import fork_table

    src = tmp_path / "src"
    write_deltalake(str(src), pa.table({"id": pa.array([1, 2, 3], pa.int64())}),
                    configuration={"delta.enableChangeDataFeed": "true"})
    DeltaTable(str(src)).update(predicate="id = 2", updates={"id": "20"})
    cdc = [p for p in src.rglob("*") if "_change_data" in p.parts and p.is_file()]
    assert cdc, "deltalake wrote change data"
    forked = fork_table(src, tmp_path / "fork", "d.s.t", 1, "k", copy=False)
    linked = [tmp_path / "fork" / p.relative_to(src) for p in cdc]
    assert all(p.stat().st_ino == q.stat().st_ino for p, q in zip(linked, cdc, strict=True))
    assert forked.linked_bytes > 0 and forked.copied_bytes == 0
    assert DeltaTable(str(tmp_path / "fork")).load_cdf(starting_version=1).read_all().num_rows > 0
