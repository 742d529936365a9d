"""Drills at older barriers (VACUUM since, retention, --at TIME) and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drsync.config import load_settings
from drsync.demo import ROUND_WRITES, create_sample_warehouse, table_dir
from drsync.sets.manifest import key_time
from drsync.site.layout import DRILLS_DIR
from drsync.site.retention import run_retention
from drsync.standby.restore import barrier_dir
from tests.helpers import Sites, drsync, duck, rows
from tests.integration.test_drill import _round

_append, _optimize_vacuum = ROUND_WRITES[0], ROUND_WRITES[5]


def test_fork_older_barrier_survives_vacuum_and_holds_its_barrier(sites: Sites, tmp_path: Path) -> None:
    cfg = str(sites.config)
    create_sample_warehouse(sites.primary, rows=40)
    _round(sites)
    keys = sorted(p.stem for p in barrier_dir(sites.standby).iterdir())
    old = keys[0]
    old_versions = json.loads((barrier_dir(sites.standby) / f"{old}.json").read_text())
    for r in range(1, 4):  # appends: iot.raw.readings gets checkpoints above the old version
        _append(sites.primary, r)
        _round(sites)
    con = duck()
    want = {n: rows(con, table_dir(sites.primary, n), v) for n, v in old_versions.items()}

    # --at TIME picks the newest barrier at or before it (here: the old one, given in UTC)
    fork = tmp_path / "old"
    at = key_time(old).isoformat()
    p = drsync("drill", "start", "old", "--into", str(fork), "--at", at, "-c", cfg)
    assert p.returncode == 0, p.stderr
    assert f"at barrier {old}" in p.stdout
    for name, expected in want.items():
        assert rows(con, table_dir(fork, name)) == expected, name
    readings = table_dir(fork, "iot.raw.readings") / "_delta_log"
    version = old_versions["iot.raw.readings"]
    for f in readings.iterdir():  # never a log file, nor _last_checkpoint, above the fork's version
        if f.name == "_last_checkpoint":
            assert json.loads(f.read_text())["version"] <= version
        else:
            assert int(f.name.split(".")[0]) <= version, f.name

    # VACUUM on the primary, mirrored on the standby: the fork keeps its files (hard links)
    _optimize_vacuum(sites.primary, 9)
    _round(sites)
    for name, expected in want.items():
        assert rows(con, table_dir(fork, name)) == expected, name
    info = json.loads(drsync("drill", "list", "--format", "json", "-c", cfg, check=True).stdout)[0]
    assert info["kept_bytes"] > 0 and info["key"] == old

    # retention keeps the barrier map a drill holds, deletes the others it may
    settings = load_settings(sites.config)
    report = run_retention(settings, "standby", now=datetime.now(UTC) + timedelta(days=30))
    assert old not in report.deleted_barrier_maps and report.deleted_barrier_maps
    assert (barrier_dir(sites.standby) / f"{old}.json").exists()

    # a new fork of that barrier now cannot be made: VACUUM removed its files; say which and why
    again = tmp_path / "again"
    p = drsync("drill", "start", "again", "--into", str(again), "--at", old, "-c", cfg)
    assert p.returncode == 1
    assert "error: table iot.raw.readings: cannot fork barrier" in p.stderr and "VACUUM" in p.stderr
    assert not again.exists() and not (sites.standby_meta / DRILLS_DIR / "again.json").exists()
    assert not [e for e in tmp_path.iterdir() if e.name.startswith(".drsync-drill")]

    # dropping the drill releases the barrier: the next retention deletes its map
    drsync("drill", "drop", "old", "--yes", "-c", cfg, check=True)
    report = run_retention(settings, "standby", now=datetime.now(UTC) + timedelta(days=30))
    assert old in report.deleted_barrier_maps


def test_bad_input_is_one_clear_line(sites: Sites, tmp_path: Path) -> None:
    cfg = str(sites.config)
    p = drsync("drill", "start", "x", "--into", str(tmp_path / "x"), "-c", cfg)
    assert p.returncode == 1 and "no barrier map" in p.stderr and "hint: run drsync restore" in p.stderr
    create_sample_warehouse(sites.primary, rows=10)
    _round(sites)
    (tmp_path / "exists").mkdir()
    cases = {
        ("--into", str(tmp_path / "exists")): "already exists",
        ("--into", str(sites.standby / "inside")): "inside the standby warehouse",
        ("--into", str(tmp_path / "y"), "--at", "20000101_000000"): "barrier 20000101_000000 is not retained",
        ("--into", str(tmp_path / "y"), "--at", "yesterday"): "neither a barrier key",
        ("--into", str(tmp_path / "y"), "--at", "2000-01-01T00:00:00Z"): "no retained barrier at or before",
        ("--into", str(tmp_path / "y"), "--table", "no.such.table"): "not in the barrier map: no.such.table",
        ("--into", str(tmp_path / "y"), "--publication", "nope"): "publication nope is unknown",
        ("--into", str(tmp_path / "no" / "parent")): "parent directory does not exist",
    }
    for args, message in cases.items():
        p = drsync("drill", "start", "x", *args, "-c", cfg)
        assert p.returncode == 1, (args, p.stdout, p.stderr)
        assert p.stderr.startswith("error: ") and message in p.stderr, (args, p.stderr)
    p = drsync("drill", "start", "bad/name", "--into", str(tmp_path / "y"), "-c", cfg)
    assert p.returncode == 1 and "drill name" in p.stderr
    p = drsync("drill", "drop", "ghost", "--yes", "-c", cfg)
    assert p.returncode == 1 and "no drill named ghost" in p.stderr
    # one table, by publication and by name; a second drill of the same name is refused
    p = drsync("drill", "start", "one", "--into", str(tmp_path / "one"), "--table", "hr.people.employees",
               "-c", cfg)
    assert p.returncode == 0, p.stderr
    assert [d.name for d in (tmp_path / "one").iterdir() if not d.name.startswith(".")] == ["hr"]
    p = drsync("drill", "start", "one", "--into", str(tmp_path / "two"), "-c", cfg)
    assert p.returncode == 1 and "drill one exists" in p.stderr
    p = drsync("drill", "start", "pub", "--into", str(tmp_path / "pub"), "--publication", "all", "-c", cfg)
    assert p.returncode == 0 and "10 table(s)" in p.stdout, p.stderr
