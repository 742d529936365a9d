"""Disk full on either site: a clear error, state `abnormal`, nothing half-applied, and the
round completes once space returns.

Real small filesystems: a tmpfs of a few MB is mounted over the directory (we are root; a
failing mount fails the test rather than skipping it). "Space returns" = the same tmpfs
remounted larger, so whatever was written before the failure is still there.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drsync.demo import TABLES, create_sample_warehouse, table_dir
from tests.faults.conftest import Reliability
from tests.helpers import Sites, drsync, duck, make_sites, rows, tree
from tests.integration.test_ssh import big_table, ssh_sites
from tests.sshd import SshServer


@pytest.fixture
def small_fs() -> Iterator[list[Path]]:
    """Directories to mount a small tmpfs on; unmounted (lazily) at teardown."""
    mounted: list[Path] = []
    yield mounted
    for d in reversed(mounted):
        subprocess.run(["umount", "-l", str(d)], check=False)


def _mount(mounted: list[Path], d: Path, size: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs on {d} for the disk-full case: {p.stderr}")
    mounted.append(d)


def _grow(d: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=256m", str(d)], check=True)


def _state(sites: Sites) -> dict[str, str]:
    doc = json.loads(drsync("show-progress", "-c", str(sites.config), "--format", "json").stdout)
    return doc["apply"]  # type: ignore[no-any-return]


def _one_clear_line(p: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, p.stderr
    return lines[0]


def _equal(sites: Sites, names: list[str]) -> None:
    con = duck()
    for name in names:
        assert rows(con, table_dir(sites.standby, name)) == rows(con, table_dir(sites.primary, name)), name


def _big(sites: Sites) -> str:
    big_table(sites.primary, mb=12, files=4)
    return "big.raw.blobs"


def test_primary_staging_full(sites: Sites, small_fs: list[Path], reliability: Reliability) -> None:
    rel = reliability("primary staging (media) full", "tmpfs of 4 MB as the primary's media directory; "
                      "a 12 MB round; then the tmpfs remounted at 256 MB")
    create_sample_warehouse(sites.primary, rows=20)
    _mount(small_fs, sites.primary_media, "4m")
    with rel.trial():
        big = _big(sites)
        p = drsync("backup", "-c", str(sites.config))
        assert p.returncode == 1, p.stderr
        line = _one_clear_line(p)
        assert "disk full" in line or "No space left" in line, line
        assert _state(sites)["backupState"] == "abnormal"
        assert not list((sites.primary_meta / "manifests").glob("*.manifest.json")), \
            "a set whose bundles did not fit was committed"
        r = drsync("restore", "-c", str(sites.config))
        assert r.returncode == 0 and "nothing to restore" in r.stdout, r.stdout + r.stderr
        _grow(sites.primary_media)
        drsync("backup", "-c", str(sites.config), check=True)
        drsync("restore", "-c", str(sites.config), check=True)
        _equal(sites, [*TABLES, big])


def test_standby_inbox_full(sites: Sites, small_fs: list[Path], reliability: Reliability) -> None:
    rel = reliability("standby disk full (inbox)", "tmpfs of 4 MB as the standby's media directory "
                      "(local transport); a 12 MB round; then remounted at 256 MB")
    create_sample_warehouse(sites.primary, rows=20)
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    _mount(small_fs, sites.standby_media, "4m")
    with rel.trial():
        big = _big(sites)
        before = tree(sites.standby)
        p = drsync("backup", "-c", str(sites.config))
        assert p.returncode == 1, p.stderr
        line = _one_clear_line(p)
        assert "disk full" in line or "No space left" in line, line
        assert _state(sites)["backupState"] == "abnormal"
        r = drsync("restore", "-c", str(sites.config))
        assert r.returncode == 0 and "nothing to restore" in r.stdout, r.stdout + r.stderr
        assert tree(sites.standby) == before
        _grow(sites.standby_media)
        drsync("backup", "-c", str(sites.config), check=True)
        drsync("restore", "-c", str(sites.config), check=True)
        _equal(sites, [*TABLES, big])


def test_standby_warehouse_full(tmp_path: Path, small_fs: list[Path], reliability: Reliability) -> None:
    rel = reliability("standby disk full (warehouse)", "tmpfs of 8 MB as the standby's warehouse "
                      "(staging lives there); a 12 MB set restored; then remounted at 256 MB")
    sites = make_sites(tmp_path / "s")
    _mount(small_fs, sites.standby, "8m")
    create_sample_warehouse(sites.primary, rows=20)
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    with rel.trial():
        big = _big(sites)
        drsync("backup", "-c", str(sites.config), check=True)
        before = {n: rows(duck(), table_dir(sites.standby, n)) for n in TABLES}
        p = drsync("restore", "-c", str(sites.config))
        assert p.returncode == 1, p.stdout + p.stderr
        line = _one_clear_line(p)
        assert "disk full" in line or "No space left" in line, line
        assert _state(sites)["restoreState"] == "abnormal"
        assert not (sites.standby / "big").exists(), "half a table was applied"
        assert {n: rows(duck(), table_dir(sites.standby, n)) for n in TABLES} == before
        _grow(sites.standby)
        drsync("restore", "-c", str(sites.config), check=True)
        _equal(sites, [*TABLES, big])
        staging = sites.standby / "_drsync" / "staging"
        assert not staging.exists() or not list(staging.iterdir()), "staging left behind"


@pytest.mark.parametrize(("space", "mb", "files"), [("1m", 4, 2), ("5m", 8, 4)])
def test_standby_disk_full_over_ssh(sshd: SshServer, tmp_path: Path, small_fs: list[Path], space: str,
                                    mb: int, files: int, reliability: Reliability) -> None:
    """(Moved from tests/integration/test_ssh.py.) The agent's inbox fills up mid-put: at the
    first raw file, or (5m) at the third while the fourth is already in flight on its link."""
    rel = reliability("standby disk full (inbox, SSH)", f"tmpfs of {space}B as the standby's media "
                      "directory behind a real sshd + drsync agent; then remounted at 256 MB")
    sites = ssh_sites(tmp_path / "s", sshd)
    _mount(small_fs, sites.standby_media, space)
    with rel.trial():
        big_table(sites.primary, mb=mb, files=files)
        p = drsync("backup", "-c", str(sites.config))
        assert p.returncode == 1 and "Traceback" not in p.stderr
        assert "disk full" in p.stderr, p.stderr
        r = drsync("restore", "-c", str(sites.config))
        assert r.returncode == 0 and "nothing to restore" in r.stdout
        assert not (sites.standby / "big").exists()
        assert _state(sites)["backupState"] == "abnormal"
        _grow(sites.standby_media)
        # Space is back: the pending set ships and applies.
        drsync("backup", "-c", str(sites.config), check=True)
        drsync("restore", "-c", str(sites.config), check=True)
        _equal(sites, ["big.raw.blobs"])
