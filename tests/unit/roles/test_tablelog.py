"""Setting a table's log back (never deleting), the shared version, inventories at a version."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from drsync.primary.changes import collect_changes
from drsync.roles.tablelog import (
    FAR_FUTURE_MS,
    Commits,
    commit_hashes,
    inventory_at,
    set_aside_above,
    shared_version,
)
from drsync.tableformat.delta import list_log
from tests.helpers import duck, latest_version, rows


def _append(t: Path, start: int, n: int, mode: str = "append") -> None:
    write_deltalake(str(t), pa.table({"id": pa.array(range(start, start + n), pa.int64())}), mode=mode)


def test_set_aside_above_moves_commits_and_their_files(tmp_path: Path) -> None:
    t = tmp_path / "t"
    _append(t, 0, 3, "overwrite")
    _append(t, 10, 2)
    expected = rows(duck(), t)
    _append(t, 20, 4)
    _append(t, 30, 5)
    DeltaTable(str(t)).create_checkpoint()  # checkpoint 3 and _last_checkpoint go too
    q = tmp_path / "q"
    r = set_aside_above(t, "d.s.t", 1, q)
    assert r.commits == [2, 3] and r.rows == 9
    assert latest_version(t) == 1 and rows(duck(), t) == expected
    moved = {p.relative_to(q).as_posix() for p in q.rglob("*") if p.is_file()}
    assert set(r.files) == moved
    assert {"_delta_log/00000000000000000002.json", "_delta_log/00000000000000000003.json",
            "_delta_log/_last_checkpoint"} <= moved
    assert sum(p.endswith(".parquet") and not p.startswith("_delta_log") for p in moved) == 2
    again = set_aside_above(t, "d.s.t", 1, tmp_path / "q2")
    assert again.files == [] and again.commits == []


def test_shared_version_needs_byte_identical_commits(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _append(a, 0, 3, "overwrite")
    _append(a, 10, 2)
    shutil.copytree(a, b)
    assert shared_version(_c(a), _c(b)) == 1
    _append(a, 20, 1)  # version 2 on both, different commits
    _append(b, 30, 1)
    assert shared_version(_c(a), _c(b)) == 1
    assert shared_version(_c(a), _c(tmp_path / "a")) == 2
    assert commit_hashes(tmp_path / "nothing") is None


def _c(t: Path) -> Commits:
    c = commit_hashes(t)
    assert c is not None
    return c


def test_inventory_at_is_the_inventory_a_full_copy_builds(tmp_path: Path) -> None:
    t = tmp_path / "t"
    _append(t, 0, 3, "overwrite")
    _append(t, 10, 2)
    inv = inventory_at(t, "d.s.t", 1)
    change = collect_changes(t, "d.s.t", list_log(t), FAR_FUTURE_MS, None)
    assert change is not None and inv.to_json() == change.inventory.to_json()
    assert inv.version == 1 and len(inv.files) == 2


def test_inventory_at_tracks_what_the_directory_holds_beyond_the_version(tmp_path: Path) -> None:
    """After a role change the new standby holds the whole directory: files removed but not yet
    vacuumed and log files below the checkpoint are tracked, so their deletion on the new
    primary is shipped (else they would stay on the new standby forever)."""
    t = tmp_path / "t"
    _append(t, 0, 3, "overwrite")
    _append(t, 10, 2)
    _append(t, 20, 2)
    dt = DeltaTable(str(t))
    dt.optimize.compact()  # v3 removes the three small files, VACUUM has not run
    dt.create_checkpoint()  # the full copy's log floor becomes 3
    inv = inventory_at(t, "d.s.t", 3)
    assert len(inv.removed) == 3 and set(inv.removed) <= set(inv.files)
    assert "_delta_log/00000000000000000000.json" in inv.log_files  # below the floor

    removed = set(inv.removed)
    DeltaTable(str(t)).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    (t / "_delta_log" / "00000000000000000000.json").unlink()  # log cleanup
    change = collect_changes(t, "d.s.t", list_log(t), FAR_FUTURE_MS, inv)
    assert change is not None
    assert set(change.deletions) == removed | {"_delta_log/00000000000000000000.json"}
