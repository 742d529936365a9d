"""set-independent: refuses while replication runs, then leaves both sides writable and clean."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from drsync.demo import create_sample_warehouse
from drsync.site.locks import operation_lock
from drsync.site.warehouse import discover_tables
from tests.helpers import Sites, drsync, duck, rows, tree


def _content(sites: Sites) -> dict[str, list[tuple[object, ...]]]:
    con = duck()
    return {f"{side}:{t.name}": rows(con, t.path(wh)) for side, wh in
            (("p", sites.primary), ("s", sites.standby)) for t in discover_tables(wh)}


def test_set_independent_refuses_while_running_then_cleans_both_sides(sites: Sites) -> None:
    create_sample_warehouse(sites.primary, rows=10)
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    cfg = str(sites.config)

    r = drsync("set-independent", "-c", cfg)
    assert r.returncode == 2 and "--yes" in r.stderr  # destructive: needs --yes off a terminal
    r = drsync("set-independent", "-c", cfg, "--yes")
    assert r.returncode == 1 and "backup is not stopped" in r.stderr, r.stderr
    drsync("stop-backup", "-c", cfg, check=True)
    r = drsync("set-independent", "-c", cfg, "--yes")
    assert r.returncode == 1 and "restore is not stopped" in r.stderr, r.stderr
    drsync("stop-restore", "-c", cfg, check=True)
    with operation_lock(sites.standby_meta / "locks", "restore"):
        r = drsync("set-independent", "-c", cfg, "--yes")
    assert r.returncode == 1 and "restore is still running" in r.stderr, r.stderr

    primary_before = tree(sites.primary)
    content = _content(sites)
    r = drsync("set-independent", "-c", cfg, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert any(line.startswith("made 10 replicated table(s) writable") for line in lines)
    assert any(line.startswith("deleted") and "backuprestoreinfo" in line for line in lines)
    assert any("set(s) of bundles" in line for line in lines)
    # Tables untouched (content, and every file of the primary), standby writable.
    assert tree(sites.primary) == primary_before
    assert _content(sites) == content
    for t in discover_tables(sites.standby):
        for d in (t.path(sites.standby), t.path(sites.standby) / "_delta_log"):
            assert stat.S_IMODE(os.stat(d).st_mode) & stat.S_IWUSR, d
    # DR state gone on both sides; the audit log stays.
    for meta in (sites.primary_meta, sites.standby_meta):
        left = sorted(p.name for p in meta.iterdir())
        assert set(left) <= {"locks", "audit.log"}, left
    for media in (sites.primary_media, sites.standby_media):
        assert not media.exists() or not any(media.iterdir())
    assert not (sites.standby / "_drsync" / "barriers").exists()

    # Every attempt is audited on both sides, the refusals with their reason.
    audit = [json.loads(line) for line in (sites.standby_meta / "audit.log").read_text().splitlines()]
    assert [e["outcome"].split(":")[0] for e in audit] == ["failed"] * 3 + ["done"]
    assert "backup is not stopped" in audit[0]["outcome"] and audit[0]["config"] == cfg

    # Twice is harmless.
    r = drsync("set-independent", "-c", cfg, "--yes")
    assert r.returncode == 0 and "nothing to do" in r.stdout
    assert _content(sites) == content


def test_set_independent_over_ssh(sshd: object, tmp_path: Path) -> None:
    """Run on the primary's host; the standby's side is checked and cleaned by its agent."""
    from tests.integration.test_ssh import ssh_sites
    from tests.sshd import SshServer

    assert isinstance(sshd, SshServer)
    base = tmp_path / "s"
    sites = ssh_sites(base, sshd, more=f"remote-config-file={base / 'backupRestore.ini'}")
    create_sample_warehouse(sites.primary, rows=10)
    drsync("backup", "-c", str(sites.config), check=True)  # restored on request by the agent
    cfg = str(sites.config)
    drsync("stop-backup", "-c", cfg, check=True)
    r = drsync("set-independent", "-c", cfg, "--yes")
    assert r.returncode == 1 and "restore is not stopped" in r.stderr, r.stderr  # said by the agent
    assert "reprotect" not in r.stderr
    drsync("stop-restore", "-c", cfg, check=True)
    content = _content(sites)
    r = drsync("set-independent", "-c", cfg, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "made 10 replicated table(s) writable" in r.stdout
    assert _content(sites) == content
    for meta in (sites.primary_meta, sites.standby_meta):
        assert set(p.name for p in meta.iterdir()) <= {"locks", "audit.log"}, list(meta.iterdir())
    for t in discover_tables(sites.standby):
        assert stat.S_IMODE(os.stat(t.path(sites.standby)).st_mode) & stat.S_IWUSR
    r = drsync("set-independent", "-c", cfg, "--yes")
    assert r.returncode == 0 and "nothing to do" in r.stdout, r.stdout + r.stderr
