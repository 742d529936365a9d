"""Findings 2 and 5 of issue 15: symlinks in table directories, on the primary (what is
shipped) and on the standby (where restored files land, what gets chmod'ed or removed)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from drsync.fsutil import rmtree_force
from tests.helpers import Sites, drsync, duck, latest_version, rows
from tests.security.attack import snapshot, write_table

SECRET = b"-----BEGIN OPENSSH PRIVATE KEY----- the standby must never receive this"


def _add_commit(table: Path, path: str, size: int) -> None:
    """Commit an `add` of `path` as any Delta writer would (the file itself is planted by the test)."""
    version = latest_version(table) + 1
    now = int(time.time() * 1000)
    actions = [{"commitInfo": {"timestamp": now, "operation": "WRITE"}},
               {"add": {"path": path, "partitionValues": {}, "size": size, "modificationTime": now,
                        "dataChange": True}}]
    text = "\n".join(json.dumps(a) for a in actions) + "\n"
    (table / "_delta_log" / f"{version:020d}.json").write_text(text)


def _shipped_bytes(sites: Sites) -> bytes:
    """Every byte on both sites' media, decompressed, plus the standby warehouse."""
    import zstandard

    out = b""
    for root in (sites.primary_media, sites.standby_media):
        for p in root.rglob("*.tar*"):
            data = p.read_bytes()
            zst = p.name.endswith(".zst")
            out += zstandard.ZstdDecompressor().decompressobj().decompress(data) if zst else data
    for p in sites.standby.rglob("*"):
        if p.is_file():
            out += p.read_bytes()
    return out


@pytest.mark.parametrize("planted", ["file", "directory"])
def test_backup_ships_nothing_through_a_symlink(sites: Sites, tmp_path: Path, planted: str) -> None:
    """Finding 2: `part-x.parquet -> /some/secret` plus a commit adding it shipped the secret."""
    table = write_table(sites.primary, "db.s.t", [1])
    write_table(sites.primary, "db.s.other", [1])
    drsync("backup", "-c", str(sites.config), check=True)
    secret_dir = tmp_path / "elsewhere"
    secret_dir.mkdir()
    (secret_dir / "id_ed25519").write_bytes(SECRET)
    if planted == "file":
        (table / "part-evil.parquet").symlink_to(secret_dir / "id_ed25519")
        _add_commit(table, "part-evil.parquet", len(SECRET))
    else:
        (table / "sub").symlink_to(secret_dir)
        _add_commit(table, "sub/id_ed25519", len(SECRET))
    write_table(sites.primary, "db.s.other", [2])
    b = drsync("backup", "-c", str(sites.config))
    assert b.returncode == 3, b.stdout + b.stderr
    assert "db.s.t" in b.stderr and "symlink" in b.stderr and "Traceback" not in b.stderr
    r = drsync("restore", "-c", str(sites.config))
    assert r.returncode == 3, r.stdout + r.stderr  # the partial set applies, naming the failed table
    assert rows(duck(), sites.standby / "db" / "s" / "other") == [(1,), (2,)]
    assert SECRET not in _shipped_bytes(sites)


def test_restore_never_writes_through_a_symlinked_table_directory(sites: Sites, tmp_path: Path) -> None:
    """Finding 5: a symlinked table directory made restored files land outside the warehouse
    (and that directory chmod'ed 0555)."""
    write_table(sites.primary, "db.s.t", [1])
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o700)
    (sites.standby / "db" / "s").mkdir(parents=True)
    (sites.standby / "db" / "s" / "t").symlink_to(outside)
    before = snapshot(tmp_path, skip=(sites.base,))
    drsync("backup", "-c", str(sites.config), check=True)
    r = drsync("restore", "-c", str(sites.config))
    assert r.returncode == 1 and "symlink" in r.stderr and "db.s.t" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert snapshot(tmp_path, skip=(sites.base,)) == before
    assert list(outside.iterdir()) == []


def test_rmtree_force_never_chmods_through_a_symlink(tmp_path: Path) -> None:
    """Finding 5: rmtree_force on a symlinked `.drsync-replace` chmod'ed the target tree 0755."""
    target = tmp_path / "target"
    (target / "inner").mkdir(parents=True)
    (target / "inner" / "f").write_text("keep")
    for d in (target / "inner", target):
        d.chmod(0o555)
    link = tmp_path / ".t.drsync-replace"
    link.symlink_to(target)
    before = snapshot(target)
    rmtree_force(link)
    assert not os.path.lexists(link)
    assert snapshot(target) == before
    assert oct(target.stat().st_mode & 0o777) == "0o555"
