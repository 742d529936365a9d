"""One-shot `drsync backup` / `restore` as cron runs them (issue 16, items 2-4): the daemon's
keys are honoured, every run leaves a trace in the rotating log file, and stop-backup is
sticky but not silent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from drsync.config import load_settings
from drsync.daemon.oneshot import LAST_ROUND_FILE, decide_backup
from drsync.site.state import PrimaryState, save_state
from tests.helpers import Sites, make_sites


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, without tests.helpers.drsync's `--now` for backup."""
    env = {k: v for k, v in os.environ.items() if k != "DRSYNC_DEBUG"}
    return subprocess.run([sys.executable, "-m", "drsync", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def one_table(sites: Sites, n: int = 3) -> Path:
    where = sites.primary / "db" / "s" / "t"
    write_deltalake(str(where), pa.table({"id": list(range(n))}), mode="append")
    return where


def test_backup_interval_is_honoured_now_forces_and_the_log_file_keeps_everything(sites: Sites) -> None:
    one_table(sites)
    cfg = str(sites.config)
    first = run("backup", "-c", cfg)
    assert first.returncode == 0 and not first.stdout.startswith("no round"), first.stdout + first.stderr
    one_table(sites)
    second = run("backup", "-c", cfg)  # a second apart: skipped, one line, exit 0
    assert second.returncode == 0, second.stderr
    lines = second.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("no round: the last one started at"), second.stdout
    assert "backup-exec-time-interval=1m" in lines[0] and "--now" in lines[0]
    keys_before = sorted(p.name for p in (sites.primary_meta / "manifests").iterdir())
    forced = run("backup", "--now", "-c", cfg)
    assert forced.returncode == 0, forced.stderr
    assert len(sorted(p.name for p in (sites.primary_meta / "manifests").iterdir())) == len(keys_before) + 1
    # Item 3: every run is in the daemon's rotating log file, even with stdout thrown away.
    log_text = (sites.primary_meta / "logs" / "drsync.log").read_text()
    assert lines[0] in log_text
    assert first.stdout.strip().splitlines()[-1] in log_text
    restored = run("restore", "-c", cfg)
    assert restored.returncode == 0
    assert restored.stdout.strip() in (sites.standby_meta / "logs" / "drsync.log").read_text()


def test_a_suppressed_window_skips_the_round(tmp_path: Path) -> None:
    now = datetime.now()
    start, end = now - timedelta(minutes=2), now + timedelta(minutes=3)
    sites = make_sites(tmp_path / "sites", extra=(
        f"new-disaster-recovery-suppressed-time-windows={start:%H:%M}-{end:%H:%M}\n"))
    one_table(sites)
    r = run("backup", "-c", str(sites.config))
    assert r.returncode == 0 and r.stdout.startswith("no round: inside suppressed window"), r.stdout
    assert not (sites.primary_meta / "manifests").exists() or not any(
        (sites.primary_meta / "manifests").iterdir())
    assert run("backup", "--now", "-c", str(sites.config)).returncode == 0
    assert any((sites.primary_meta / "manifests").iterdir())


def test_backpressure_ships_instead_of_cutting_and_full_sets_are_requested(tmp_path: Path) -> None:
    sites = make_sites(tmp_path / "sites", extra=(
        "local-reserve-file-count=1\nfull-backup-exec-time-interval=1h\n"))
    settings = load_settings(sites.config)
    save_state(sites.primary_meta, PrimaryState(unshipped=["20260101_000000"]))
    waiting = sites.primary_media / "20260101_000000"
    waiting.mkdir(parents=True)
    for i in range(2):
        (waiting / f"b{i}.tar.zst").write_bytes(b"x")
    now = datetime(2026, 1, 1, 12, 0, 0)
    held = decide_backup(settings, now, force=False)
    assert held.ship_only and "local-reserve-file-count=1" in held.skip
    for i in range(2):
        (waiting / f"b{i}.tar.zst").unlink()
    assert decide_backup(settings, now, force=False).note == ""  # the first round: full anyway
    assert json.loads((sites.primary_meta / LAST_ROUND_FILE).read_text())["started"] == now.isoformat()
    assert decide_backup(settings, now + timedelta(seconds=30), force=False).skip  # interval 1m
    due = decide_backup(settings, now + timedelta(hours=1), force=False)
    assert due.skip == "" and due.note.startswith("full set (every 1h)")
    assert (sites.primary_meta / "reseed.json").exists()


def test_stop_backup_is_sticky_and_says_so(sites: Sites) -> None:
    one_table(sites)
    cfg = str(sites.config)
    assert run("backup", "-c", cfg).returncode == 0
    assert run("stop-backup", "-c", cfg).returncode == 0
    doc = json.loads(run("show-progress", "-c", cfg, "--format", "json").stdout)
    assert doc["apply"]["backupState"] == "stopped"  # at once, before any run sees the intent
    r = run("backup", "--now", "-c", cfg)
    assert r.returncode == 4, (r.returncode, r.stdout, r.stderr)
    assert "backup is stopped by stop-backup since" in r.stderr and "start-backup" in r.stderr
    doc = json.loads(run("show-progress", "-c", cfg, "--format", "json").stdout)
    assert doc["apply"]["backupState"] == "stopped"
    assert "stopped by stop-backup" in (sites.primary_meta / "logs" / "drsync.log").read_text()
    assert run("stop-restore", "-c", cfg).returncode == 0
    assert run("restore", "-c", cfg).returncode == 4
    run("start-backup", "-c", cfg)
    doc = json.loads(run("show-progress", "-c", cfg, "--format", "json").stdout)
    assert doc["apply"]["backupState"] == "waiting"
    one_table(sites)
    ok = run("backup", "--now", "-c", cfg)
    assert ok.returncode == 0 and not ok.stdout.startswith("no round"), ok.stdout + ok.stderr


def test_retention_from_a_timer_logs_to_the_file(sites: Sites) -> None:
    r = run("retention", "-c", str(sites.config), "--role", "primary")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() and r.stdout.strip() in (sites.primary_meta / "logs" / "drsync.log").read_text()
