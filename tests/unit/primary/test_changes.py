"""drsync.primary.changes: what one round ships for one table, on real deltalake-written tables."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from drsync.errors import TableFormatError
from drsync.primary.changes import TableChange, TableInventory, barrier_version, collect_changes
from drsync.tableformat import delta

NAME = "sales.public.orders"
TESTDATA = Path(__file__).resolve().parents[2] / "data" / "delta-rs"
FUTURE_MS = 1 << 60  # a barrier after everything


def log(v: int) -> str:
    return f"_delta_log/{v:020d}.json"


def append(table: Path, values: list[int], part: str = "p") -> None:
    """One commit adding one file in partition `part` (the table is partitioned by it)."""
    data = {"v": values, "part": [part] * len(values)}
    write_deltalake(str(table), pa.table(data), mode="append", partition_by=["part"])


def collect(table: Path, prev: TableInventory | None,
            barrier_ms: int = FUTURE_MS) -> TableChange | None:
    # The inventory is persisted as JSON between rounds: pass it through JSON like the primary.
    stored = TableInventory.from_json(json.loads(json.dumps(prev.to_json()))) if prev else None
    return collect_changes(table, NAME, delta.list_log(table), barrier_ms, stored)


def data_files(change: TableChange) -> set[str]:
    return {f.path for f in change.files if f.kind in ("data", "dv", "cdc")}


def log_files(change: TableChange) -> set[str]:
    return {f.path for f in change.files if f.kind not in ("data", "dv", "cdc")}


def live(table: Path) -> set[str]:
    """Data files of the latest version, as deltalake sees them (table-relative, on disk)."""
    return {os.path.relpath(u, table) for u in DeltaTable(str(table)).file_uris()}


def set_mtime_ms(path: Path, ms: int) -> None:
    os.utime(path, ns=(ms * 1_000_000, ms * 1_000_000))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def table(tmp_path: Path) -> Path:
    t = tmp_path / "sales" / "public" / "orders"
    append(t, [1, 2], part="a b")
    return t


# --- first round, no change, append ---------------------------------------------------------


def test_first_round_is_full(table: Path) -> None:
    ch = collect(table, None)
    assert ch is not None
    assert ch.name == NAME
    assert ch.mode == "full"
    assert (ch.from_version, ch.to_version) == (None, 0)
    assert data_files(ch) == live(table)
    assert log_files(ch) == {log(0)}
    commit = next(f for f in ch.files if f.kind == "commit")
    assert commit.content == (table / log(0)).read_bytes()
    assert commit.mtime_ns == (table / log(0)).stat().st_mtime_ns
    for f in ch.files:
        assert f.size == (table / f.path).stat().st_size
    assert ch.table_id == DeltaTable(str(table)).metadata().id
    assert ch.inventory.version == 0
    assert set(ch.inventory.files) == live(table)
    assert ch.deletions == []
    assert [e["kind"] for e in ch.ddl] == ["protocol", "metaData"]
    # data before commits (the apply order)
    kinds = [f.kind for f in ch.files]
    assert kinds.index("commit") > max(i for i, k in enumerate(kinds) if k == "data")


def test_no_change_returns_none(table: Path) -> None:
    first = collect(table, None)
    assert first is not None
    assert collect(table, first.inventory) is None
    assert collect(table, first.inventory) is None  # and stays so


def test_append_ships_only_new_commit_and_file(table: Path) -> None:
    first = collect(table, None)
    assert first is not None
    shipped = {f.path for f in first.files}
    before = live(table)
    append(table, [3], part="Zürich")
    ch = collect(table, first.inventory)
    assert ch is not None
    assert ch.mode == "incremental"
    assert (ch.from_version, ch.to_version) == (0, 1)
    assert log_files(ch) == {log(1)}
    assert data_files(ch) == live(table) - before
    assert len(data_files(ch)) == 1
    assert not ({f.path for f in ch.files} & shipped)
    assert ch.ddl == [] and ch.warnings == [] and ch.deletions == []
    assert ch.inventory.version == 1
    assert set(ch.inventory.files) == live(table)


def test_several_rounds_never_ship_twice(table: Path) -> None:
    inv: TableInventory | None = None
    shipped: list[str] = []
    for i in range(4):
        append(table, [i, i + 1], part=["a b", "a=b", "100%", "Zürich"][i])
        ch = collect(table, inv)
        assert ch is not None
        shipped += [f.path for f in ch.files]
        inv = ch.inventory
        assert collect(table, inv) is None
    assert len(shipped) == len(set(shipped))
    assert {p for p in shipped if not p.startswith("_delta_log/")} == live(table)
    assert {log(v) for v in range(5)} <= set(shipped)


def test_range_of_commits_in_one_round(table: Path) -> None:
    first = collect(table, None)
    assert first is not None
    for i in range(3):
        append(table, [10 + i])
    ch = collect(table, first.inventory)
    assert ch is not None
    assert (ch.from_version, ch.to_version) == (0, 3)
    commits = [f for f in ch.files if f.kind == "commit"]
    assert [f.version for f in commits] == [1, 2, 3]
    assert len(data_files(ch)) == 3


# --- barrier --------------------------------------------------------------------------------


def test_barrier_excludes_later_commits(table: Path) -> None:
    first = collect(table, None)
    assert first is not None
    append(table, [3])
    append(table, [4])
    barrier = now_ms()
    set_mtime_ms(table / log(2), barrier + 3_600_000)  # committed "after" the barrier
    ch = collect(table, first.inventory, barrier)
    assert ch is not None
    assert ch.to_version == 1
    assert log_files(ch) == {log(1)}
    v2_files = {a["add"]["path"] for a in delta.read_commit(table, 2) if "add" in a}
    assert not (data_files(ch) & v2_files)
    # The next round, after its time, picks it up.
    ch2 = collect(table, ch.inventory, barrier + 3_600_001)
    assert ch2 is not None
    assert (ch2.from_version, ch2.to_version) == (1, 2)
    assert log_files(ch2) == {log(2)}
    assert data_files(ch2) == v2_files


def test_barrier_before_everything(table: Path) -> None:
    set_mtime_ms(table / log(0), now_ms() + 3_600_000)
    with pytest.raises(TableFormatError, match=NAME.replace(".", r"\.")):
        collect(table, None, now_ms())


def test_barrier_uses_in_commit_timestamp(table: Path) -> None:
    """Where a commit carries an in-commit timestamp, that (not the file mtime) is its time."""
    first = collect(table, None)
    assert first is not None
    append(table, [3])
    path = table / log(1)
    lines = path.read_text().splitlines()
    info = json.loads(lines[0])
    assert "commitInfo" in info
    barrier = now_ms()
    info["commitInfo"]["inCommitTimestamp"] = barrier + 3_600_000
    path.write_text("\n".join([json.dumps(info), *lines[1:]]) + "\n")
    set_mtime_ms(path, barrier - 1000)
    assert collect(table, first.inventory, barrier) is None
    listing = delta.list_log(table)
    assert barrier_version(table, listing, barrier, -1) == 0
    assert barrier_version(table, listing, barrier + 3_600_000, -1) == 1


# --- log cleanup: resync from the newest checkpoint ----------------------------------------------


def test_log_cleanup_resyncs_from_newest_checkpoint(table: Path) -> None:
    append(table, [3])
    first = collect(table, None)  # standby will hold version 1
    assert first is not None and first.to_version == 1
    for i in range(3):
        append(table, [10 + i], part="x")  # versions 2..4
    DeltaTable(str(table)).create_checkpoint()  # checkpoint at 4
    append(table, [20], part="y")  # version 5
    for v in range(4):  # log cleanup removed commits 0..3 (older than the inventory's next)
        (table / log(v)).unlink()
    ch = collect(table, first.inventory)
    assert ch is not None
    assert ch.mode == "resync"
    assert (ch.from_version, ch.to_version) == (1, 5)
    assert any("resynchronising" in w and NAME in w for w in ch.warnings)
    assert ch.inventory.log_floor == 4
    ckpt = "_delta_log/00000000000000000004.checkpoint.parquet"
    assert log_files(ch) == {ckpt, log(4), log(5), "_delta_log/_last_checkpoint"}
    # Data: everything live now that the standby does not hold yet, and nothing it holds.
    assert data_files(ch) == live(table) - set(first.inventory.files)
    assert not (data_files(ch) & set(first.inventory.files))
    # The cleaned commits the standby holds are deleted there too.
    assert sorted(ch.deletions) == [log(0), log(1)]
    # Apply order: data, base checkpoint, commits, then _last_checkpoint.
    order = [f.path for f in ch.files]
    assert order.index(ckpt) > max(order.index(p) for p in data_files(ch))
    assert order.index(ckpt) < order.index(log(4)) < order.index(log(5))
    assert order[-1] == "_delta_log/_last_checkpoint"
    assert collect(table, ch.inventory) is None


def test_resync_deletes_files_vacuumed_while_their_commits_were_cleaned(table: Path) -> None:
    """The standby holds files that were removed, vacuumed, and whose remove commits were then
    cleaned from the log before the next round: the resync must still delete them on the
    standby (storage follows the primary), not keep them in the inventory forever."""
    append(table, [3], part="a b")
    first = collect(table, None)  # standby holds versions 0..1 and their two files
    assert first is not None
    held = set(first.inventory.files)
    assert len(held) == 2
    DeltaTable(str(table)).optimize.compact()  # removes both
    DeltaTable(str(table)).vacuum(retention_hours=0, enforce_retention_duration=False,
                                  dry_run=False)
    assert all(not (table / p).exists() for p in held)
    append(table, [4])
    DeltaTable(str(table)).create_checkpoint()
    append(table, [5])
    cp = max(delta.list_log(table).checkpoints)
    for v in range(cp):
        (table / log(v)).unlink()
    ch = collect(table, first.inventory)
    assert ch is not None and ch.mode == "resync"
    assert held <= set(ch.deletions), "vacuumed files stay on the standby"
    assert set(ch.inventory.files) == live(table)


def test_log_cleanup_without_newer_checkpoint_fails(table: Path) -> None:
    append(table, [3])
    DeltaTable(str(table)).create_checkpoint()  # at 1
    first = collect(table, None)
    assert first is not None and first.to_version == 1
    for i in range(3):
        append(table, [10 + i])  # 2..4
    (table / log(2)).unlink()
    with pytest.raises(TableFormatError, match="no newer checkpoint"):
        collect(table, first.inventory)


def test_full_copy_of_cleaned_log_starts_at_checkpoint(table: Path) -> None:
    for i in range(3):
        append(table, [i])
    DeltaTable(str(table)).create_checkpoint()  # at 3
    append(table, [9])
    for v in range(3):
        (table / log(v)).unlink()
    ch = collect(table, None)
    assert ch is not None
    assert ch.mode == "full" and ch.to_version == 4
    assert ch.inventory.log_floor == 3
    assert data_files(ch) == live(table)
    assert log_files(ch) == {"_delta_log/00000000000000000003.checkpoint.parquet", log(3),
                             log(4), "_delta_log/_last_checkpoint"}


# --- optimize + vacuum ------------------------------------------------------------------------


def test_vacuumed_files_are_deleted(table: Path) -> None:
    append(table, [3], part="a b")
    append(table, [4], part="a b")
    first = collect(table, None)
    assert first is not None
    old = set(first.inventory.files)
    assert len(old) == 3
    DeltaTable(str(table)).optimize.compact()
    ch = collect(table, first.inventory)
    assert ch is not None
    assert ch.deletions == []  # removed by the commit, still on disk: time travel needs them
    assert len(data_files(ch)) == 1
    assert set(ch.inventory.removed) == old
    DeltaTable(str(table)).vacuum(retention_hours=0, enforce_retention_duration=False,
                                  dry_run=False)
    assert all(not (table / p).exists() for p in old)
    ch2 = collect(table, ch.inventory)
    assert ch2 is not None
    assert sorted(ch2.deletions) == sorted(old)
    assert data_files(ch2) == set()
    assert ch2.inventory.removed == []
    assert set(ch2.inventory.files) == live(table)


def test_vacuum_without_new_commit_still_reported(table: Path) -> None:
    """Storage follows the primary (DESIGN §3/§5): a VACUUM that writes no commit (e.g. Spark
    with vacuum logging off) must still be mirrored by the next round."""
    append(table, [3], part="a b")
    first = collect(table, None)
    assert first is not None
    DeltaTable(str(table)).optimize.compact()
    ch = collect(table, first.inventory)
    assert ch is not None
    removed = set(ch.inventory.removed)
    assert removed
    for p in removed:  # vacuum by hand: files go, the log does not change
        (table / p).unlink()
    ch2 = collect(table, ch.inventory)
    assert ch2 is not None, "files vacuumed on the primary were never listed for deletion"
    assert sorted(ch2.deletions) == sorted(removed)


def test_file_added_and_vacuumed_between_rounds_is_not_a_warning(table: Path) -> None:
    first = collect(table, None)
    assert first is not None
    append(table, [3])
    append(table, [4])
    DeltaTable(str(table)).optimize.compact()
    DeltaTable(str(table)).vacuum(retention_hours=0, enforce_retention_duration=False,
                                  dry_run=False)
    ch = collect(table, first.inventory)
    assert ch is not None
    assert ch.warnings == []
    assert all((table / p).exists() for p in data_files(ch))
    assert data_files(ch) == live(table) - set(first.inventory.files)
    # the files the standby held are gone on the primary: deleted on the standby too
    assert sorted(ch.deletions) == sorted(set(first.inventory.files) - live(table))


def test_missing_live_file_warns_and_is_mirrored(table: Path) -> None:
    append(table, [3], part="q")
    victim = sorted(live(table))[0]
    (table / victim).unlink()  # damaged on the primary itself
    ch = collect(table, None)
    assert ch is not None
    assert victim not in data_files(ch)
    assert any(victim in w and NAME in w for w in ch.warnings)


# --- reference tables -------------------------------------------------------------------------


def copy_table(name: str, tmp_path: Path) -> Path:
    target = tmp_path / "db" / "s" / name.replace("-", "_")
    shutil.copytree(TESTDATA / name, target)
    return target


def test_full_copy_ships_deletion_vectors(tmp_path: Path) -> None:
    t = copy_table("table-with-dv-small", tmp_path)
    ch = collect(t, None)
    assert ch is not None and ch.to_version == 1
    dv = "deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin"
    assert {(f.path, f.kind) for f in ch.files if f.kind in ("data", "dv")} == {
        (dv, "dv"), ("part-00000-fae5310a-a37d-4e51-827b-c3d5516560ca-c000.snappy.parquet", "data")}
    assert next(f for f in ch.files if f.path == dv).size == (t / dv).stat().st_size
    assert log_files(ch) == {log(0), log(1)}


def test_full_copy_ships_cdc_and_every_file_commits_add(tmp_path: Path) -> None:
    t = copy_table("cdf-table-with-cdc-and-dvs", tmp_path)
    ch = collect(t, None)
    assert ch is not None
    listing = delta.list_log(t)
    wanted = {ref.path for v in listing.commits
              for ref in delta.files_added(delta.read_commit(t, v), table=NAME, where="")}
    assert data_files(ch) == wanted  # not a net delta: every version stays readable
    assert {f.kind for f in ch.files if f.path.startswith("_change_data/")} == {"cdc"}
    assert any(f.kind == "dv" for f in ch.files)


def test_full_copy_of_v2_checkpoint_table_starts_at_checkpoint(tmp_path: Path) -> None:
    t = copy_table("checkpoint-v2-table", tmp_path)
    ch = collect(t, None)
    assert ch is not None and ch.mode == "full" and ch.to_version == 9
    assert ch.inventory.log_floor == 8
    sidecars = {f.path for f in ch.files if f.kind == "sidecar"}
    assert sidecars == {"_delta_log/_sidecars/00000000000000000008.checkpoint.0000000001."
                        "0000000001.d55fb2cb-b8d3-4362-8572-c52142a9da1f.parquet"}
    ckpts = {f.path for f in ch.files if f.kind == "checkpoint"}
    assert ckpts == {"_delta_log/00000000000000000008.checkpoint."
                     "e5ac4dc4-be27-4106-8a55-609707487f83.json"}
    assert {f.version for f in ch.files if f.kind in ("commit", "crc")} == {8, 9}
    assert data_files(ch) == live(t)
    order = [f.kind for f in ch.files]
    assert order.index("checkpoint") < order.index("commit")
    assert order.index("sidecar") < order.index("commit")


# --- refusals ---------------------------------------------------------------------------------


def test_absolute_path_refused_naming_table(table: Path) -> None:
    append(table, [3])
    path = table / log(1)
    out = []
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        if "add" in obj:
            obj["add"]["path"] = f"s3://other-bucket/{obj['add']['path']}"
        out.append(json.dumps(obj))
    path.write_text("\n".join(out) + "\n")
    with pytest.raises(TableFormatError) as caught:
        collect(table, None)
    assert NAME in str(caught.value)
    assert "s3://other-bucket/" in str(caught.value)


def test_unparseable_commit_refused_naming_file(table: Path) -> None:
    first = collect(table, None)
    assert first is not None
    append(table, [3])
    with open(table / log(1), "ab") as f:
        f.write(b"{not json\n")
    with pytest.raises(TableFormatError) as caught:
        collect(table, first.inventory)
    assert log(1) in str(caught.value)


def test_inventory_json_round_trip(table: Path) -> None:
    ch = collect(table, None)
    assert ch is not None
    again = TableInventory.from_json(json.loads(json.dumps(ch.inventory.to_json())))
    assert again == ch.inventory
