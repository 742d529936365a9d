"""primary/roundmemory.py: a daemon's rounds start from what the last one ended with, and
only while nobody else touched the primary's metadata; what they ship is what rounds reading
everything from disk would ship."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from drsync.config import Settings, load_settings
from drsync.primary.round import run_backup
from drsync.primary.roundmemory import RoundMemory
from drsync.sets.manifest import Manifest, load_manifest
from drsync.site.layout import MetadataLayout
from drsync.site.state import PrimaryState, load_state
from drsync.standby.restore import run_restore
from tests.helpers import Sites, duck, make_sites, rows


def _sites(tmp_path: Path) -> tuple[Sites, Settings, Path, Path]:
    sites = make_sites(tmp_path / "sites")
    t, u = sites.primary / "db" / "s" / "t", sites.primary / "db" / "s" / "u"
    write_deltalake(str(t), pa.table({"a": [1]}))
    write_deltalake(str(u), pa.table({"a": [10]}))
    return sites, load_settings(sites.config), t, u


def _round(s: Settings, memory: RoundMemory | None, confirm_desync: bool = False) -> Manifest:
    result = run_backup(s, memory=memory, confirm_desync=confirm_desync)
    assert result.key is not None and not result.failed, result.message
    run_restore(s)
    return load_manifest(MetadataLayout(s.primary_metadata_destination).manifest(result.key))


def _idle(tmp_path: Path) -> tuple[Sites, Settings, Path, Path, RoundMemory]:
    """Two tables copied, then a round that finds both idle: both indexed, memory kept."""
    sites, s, t, u = _sites(tmp_path)
    memory = RoundMemory()
    _round(s, memory)  # first copy: nothing in memory yet
    assert memory.hits == 0
    _round(s, memory)
    assert memory.hits == 1
    return sites, s, t, u, memory


def _same(sites: Sites, name: str) -> None:
    p, s = sites.primary / "db" / "s" / name, sites.standby / "db" / "s" / name
    assert rows(duck(), s) == rows(duck(), p)


def test_rounds_from_memory_ship_every_change_and_skip_idle_tables(tmp_path: Path) -> None:
    sites, s, t, _, memory = _idle(tmp_path)
    write_deltalake(str(t), pa.table({"a": [2]}), mode="append")
    m = _round(s, memory)
    assert memory.hits == 2
    # The index in memory vouched for t before the commit: its signature moved, so it was
    # looked at and shipped from the inventory kept in memory (version 0, not a full copy).
    [entry] = m.tables
    assert (entry.name, entry.mode, entry.from_version, entry.to_version) == ("db.s.t", "incremental", 0, 1)
    write_deltalake(str(t), pa.table({"a": [3]}), mode="append")
    [entry] = _round(s, memory).tables  # the inventory written last round, kept in memory
    assert (entry.from_version, entry.to_version) == (1, 2)
    _same(sites, "t")


def test_a_round_by_another_process_in_between_is_not_undone(tmp_path: Path) -> None:
    sites, s, t, _, memory = _idle(tmp_path)
    write_deltalake(str(t), pa.table({"a": [2]}), mode="append")
    _round(s, None)  # `drsync backup` while the daemon sleeps: ships version 1
    write_deltalake(str(t), pa.table({"a": [3]}), mode="append")
    hits = memory.hits
    [entry] = _round(s, memory).tables
    assert memory.hits == hits, "memory older than the chain head was used"
    assert (entry.mode, entry.from_version, entry.to_version) == ("incremental", 1, 2)
    _round(s, memory)
    assert memory.hits == hits + 1
    _same(sites, "t")


def test_dropped_then_republished_table_from_memory(tmp_path: Path) -> None:
    sites, s, _, u, memory = _idle(tmp_path)
    shutil.rmtree(u)
    m = _round(s, memory, confirm_desync=True)  # 1 of 2 tables: above desync-guard
    assert [d.name for d in m.desync] == ["db.s.u"]
    m = _round(s, memory)  # the memory no longer counts u as replicated: not desynchronised again
    assert m.desync == [] and memory.hits == 3
    write_deltalake(str(u), pa.table({"a": [20, 21]}))  # re-created under the same name
    [entry] = _round(s, memory).tables
    assert (entry.name, entry.mode, entry.from_version) == ("db.s.u", "full", None)
    _same(sites, "u")
    assert memory.hits == 4


def test_restarted_daemon_and_replaced_index_read_from_disk(tmp_path: Path) -> None:
    sites, s, t, _, memory = _idle(tmp_path)
    # A role change or set-independent replaces tables/ (roles/sites.py): the index goes.
    MetadataLayout(s.primary_metadata_destination).index.unlink()
    write_deltalake(str(t), pa.table({"a": [2]}), mode="append")
    hits = memory.hits
    [entry] = _round(s, memory).tables
    assert memory.hits == hits and (entry.from_version, entry.to_version) == (0, 1)
    # A daemon started afresh has an empty memory: the same round from disk.
    fresh = RoundMemory()
    write_deltalake(str(t), pa.table({"a": [3]}), mode="append")
    [entry] = _round(s, fresh).tables
    assert fresh.hits == 0 and (entry.from_version, entry.to_version) == (1, 2)
    _round(s, fresh)
    assert fresh.hits == 1
    _same(sites, "t")


def test_recall_empties_the_memory(tmp_path: Path) -> None:
    _, s, _, _ = _sites(tmp_path)
    memory = RoundMemory()
    _round(s, memory)
    meta = s.primary_metadata_destination
    head = load_state(meta, PrimaryState).last_key
    assert memory.recall(meta, head) is not None
    assert memory.recall(meta, head) is None  # a round that fails after recall leaves nothing
