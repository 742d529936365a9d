"""drsync check / drsync prepare with transport=local: both sites' directories on this host."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drsync.config import Settings, load_settings
from drsync.errors import ConfigError, DrsyncError
from drsync.roles.prepare import run_prepare
from drsync.site import checks
from drsync.site.checks import CheckResult, config_failure, format_checks, run_checks
from drsync.site.pairing import space_threshold
from drsync.site.state import LOCK_DIR
from drsync.transport.agent import PAIR_FILE
from tests.helpers import REPO, Sites, as_owner_of, make_sites, tree

SSH_CHECKS = ("ssh_reachable", "host_key", "ssh_login", "remote_version", "standby_to_primary", "clock_skew")
GIB = 1 << 30


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}





@pytest.fixture
def settings(sites: Sites) -> Settings:
    return load_settings(sites.config)


@pytest.fixture
def prepared(sites: Sites, settings: Settings) -> Settings:
    report = run_prepare(settings, check_only=False)
    assert report.ok, report.text()
    return settings


def test_fresh_site_skips_ssh_checks_and_missing_dirs_fail(sites: Sites, settings: Settings) -> None:
    results = by_name(run_checks(settings))
    assert list(results) == [name for name, _ in checks.CHECKS]
    for name in SSH_CHECKS:
        assert results[name].status == "SKIPPED" and "transport=local" in results[name].detail, name
    assert results["config"].status == "OK"
    assert results["primary_disk_space"].status == results["standby_disk_space"].status == "OK"
    bad = results["directories_writable"]
    assert bad.status == "FAILED" and f"{sites.primary_media} is missing" in bad.detail
    assert f"drsync prepare -c {sites.config}" in bad.hint
    assert results["pair_recorded"].status == "FAILED"
    assert results["backup_lock"].detail.endswith("free")


def test_prepare_creates_both_sides_and_records_the_pair(sites: Sites, prepared: Settings) -> None:
    want = {"primary_cluster_id": str(prepared.primary_cluster_id),
            "standby_cluster_id": str(prepared.standby_cluster_id)}
    for meta in (sites.primary_meta, sites.standby_meta):
        assert json.loads((meta / PAIR_FILE).read_text()) == want
    for d in (sites.primary_media, sites.primary_meta, sites.standby_media, sites.standby_meta):
        assert stat.S_IMODE(d.stat().st_mode) == 0o750, d
    results = run_checks(prepared)
    assert [r.name for r in results if r.status == "FAILED"] == []
    assert by_name(results)["pair_recorded"].detail.endswith("on both sides")
    again = run_prepare(prepared, check_only=False)  # idempotent
    assert again.ok and "recorded on both sides" in again.steps[2].detail


def test_prepare_check_changes_nothing(sites: Sites, settings: Settings) -> None:
    before = tree(sites.base)
    report = run_prepare(settings, check_only=True)
    assert report.ok, report.text()
    assert [s.name for s in report.steps] == ["config", "local_directories", "cluster_pair",
                                              "standby_directories", "primary_pair"]
    assert "prepare creates it" in report.steps[1].detail
    assert tree(sites.base) == before
    assert "nothing was changed" in report.text()
    assert report.authorized_keys is None  # transport=local: no SSH


def test_prepare_tightens_an_open_directory(sites: Sites, settings: Settings) -> None:
    sites.primary_media.mkdir(parents=True, mode=0o777)
    os.chmod(sites.primary_media, 0o777)
    check = run_prepare(settings, check_only=True)
    assert "prepare tightens it to 750" in check.steps[1].detail
    assert stat.S_IMODE(sites.primary_media.stat().st_mode) == 0o777
    assert run_prepare(settings, check_only=False).ok
    assert stat.S_IMODE(sites.primary_media.stat().st_mode) == 0o750


def test_json_and_text_output(prepared: Settings) -> None:
    results = run_checks(prepared)
    doc = json.loads(format_checks(results, "json"))
    assert isinstance(doc, list) and len(doc) == len(results)
    for item in doc:
        assert set(item) == {"name", "status", "ok", "detail", "hint"}
        assert item["status"] in ("OK", "FAILED", "SKIPPED") and item["ok"] is (item["status"] != "FAILED")
    text = format_checks(results, "text").splitlines()
    assert text[0].startswith("config: OK — ")
    assert "ssh_reachable: SKIPPED — transport=local" in text


def test_failed_check_prints_its_hint() -> None:
    text = format_checks([CheckResult("x", "FAILED", "broken", "do this"), CheckResult("y", "OK", "fine")])
    assert text.splitlines() == ["x: FAILED — broken", "  hint: do this", "y: OK — fine"]


def test_config_failure_is_a_failed_config_check() -> None:
    results = config_failure(ConfigError("f.ini:3: bad key", hint="fix it"))
    doc = json.loads(format_checks(results, "json"))
    assert doc == [{"name": "config", "status": "FAILED", "detail": "f.ini:3: bad key", "hint": "fix it",
                    "ok": False}]


_HOLDER = """
import sys, time
from pathlib import Path
from drsync.site.locks import operation_lock
with operation_lock(Path(sys.argv[1]), "backup"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_held_lock_reports_live_pid_and_a_left_file_is_not_stale(sites: Sites, prepared: Settings) -> None:
    lock_dir = sites.primary_meta / LOCK_DIR
    p = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock_dir)], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "locked"
        held = by_name(run_checks(prepared))["backup_lock"]
        assert held.status == "OK" and f"held by live pid {p.pid}" in held.detail
    finally:
        p.kill()
        p.wait()
    left = by_name(run_checks(prepared))["backup_lock"]
    assert left.status == "OK"
    assert f"left by pid {p.pid}" in left.detail and "not stale" in left.detail





@pytest.fixture
def open_base() -> Iterator[Path]:
    """A base directory others may traverse (pytest's tmp is root-only)."""
    base = Path(tempfile.mkdtemp(prefix="drsync-checks-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_unwritable_directory_fails_with_a_hint(open_base: Path) -> None:
    sites = make_sites(open_base / "s")
    settings = load_settings(sites.config)
    assert run_prepare(settings, check_only=False).ok
    os.chmod(sites.standby_media, 0o550)
    with as_owner_of(open_base):
        results = by_name(run_checks(settings))
        report = run_prepare(settings, check_only=False)
    bad = results["directories_writable"]
    assert bad.status == "FAILED"
    assert bad.detail.startswith(f"{sites.standby_media} is not writable by ")
    assert "chmod 750" in bad.hint
    failed = report.steps[-1]
    assert failed.name == "local_directories" and not failed.ok
    assert "chown" in failed.hint and str(sites.standby_media) in failed.hint


def test_pair_mismatch_is_detected_and_never_overwritten(sites: Sites, prepared: Settings) -> None:
    pair_file = sites.standby_meta / PAIR_FILE
    other = {"primary_cluster_id": str(uuid.uuid4()), "standby_cluster_id": str(prepared.standby_cluster_id)}
    pair_file.write_text(json.dumps(other))
    result = by_name(run_checks(prepared))["pair_recorded"]
    assert result.status == "FAILED"
    assert str(pair_file) in result.detail and other["primary_cluster_id"] in result.detail
    assert f"remove {pair_file}" in result.hint
    report = run_prepare(prepared, check_only=False)
    assert not report.ok and report.steps[-1].name == "cluster_pair"
    assert json.loads(pair_file.read_text()) == other  # a re-paired site is not silently taken over


def test_prepare_needs_cluster_ids(sites: Sites) -> None:
    text = "\n".join(line for line in sites.config.read_text().splitlines() if "cluster-id" not in line)
    sites.config.write_text(text)
    before = tree(sites.base)  # make_sites' publications.json is already there
    report = run_prepare(load_settings(sites.config), check_only=False)
    assert [s.name for s in report.steps] == ["config"] and not report.ok
    assert "primary-cluster-id=" in report.steps[0].hint and "standby-cluster-id=" in report.steps[0].hint
    assert tree(sites.base) == before, "prepare refused, yet created something"


def test_space_threshold_is_1_gib_or_5_percent_whichever_smaller() -> None:
    assert space_threshold(100 * GIB) == GIB
    assert space_threshold(10 * GIB) == GIB // 2


def test_low_disk_space_fails_and_says_the_rule(prepared: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.disk_usage

    def fake(path: Any) -> Any:
        usage = real(path)
        return usage._replace(total=100 * GIB, free=GIB // 2) if "standby" in str(path) else usage

    monkeypatch.setattr(checks.shutil, "disk_usage", fake)
    results = by_name(run_checks(prepared))
    low = results["standby_disk_space"]
    assert low.status == "FAILED" and "0.5 GiB free of 100.0 GiB" in low.detail
    assert "1 GiB or 5 %" in low.detail and "needs 1.0 GiB" in low.hint
    assert results["primary_disk_space"].status == "OK"


class _FakeRemote:
    def __init__(self, offset: float) -> None:
        self.offset = offset

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert op == "hello"
        return {"time": time.time() + self.offset}


@pytest.mark.parametrize(("offset", "status"),
                         [(0.0, "OK"), (-2.0, "OK"), (9.0, "FAILED"), (-30.0, "FAILED")])
def test_clock_skew(prepared: Settings, monkeypatch: pytest.MonkeyPatch, offset: float, status: str) -> None:
    monkeypatch.setattr(checks._Context, "remote", lambda self: _FakeRemote(offset))
    ctx = checks._Context(prepared)
    fn = dict(checks.CHECKS)["clock_skew"]
    try:
        detail = fn(ctx)
        got = "OK"
    except DrsyncError as e:
        detail, got = e.message, "FAILED"
        assert "timedatectl" in e.hint
    assert got == status, detail
    assert ("ahead of" if offset > 0 else "behind" if offset < 0 else "agrees") in detail
