"""Large data files travel as they are (drsync/sets/rawfile.py), over a real OpenSSH server:
linked, not copied, on both sites; the agent's check on arrival; verify-on-restore=full."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from drsync.sets.rawfile import RAW_MIN_BYTES
from drsync.site.layout import MANIFEST_DIR
from tests.helpers import drsync, duck, rows
from tests.integration.test_ssh import big_table, ssh_sites
from tests.sshd import SshServer


@pytest.fixture
def server(sshd: SshServer) -> Iterator[SshServer]:
    yield sshd


def _manifest(meta: Path) -> dict[str, object]:
    (m,) = sorted((meta / MANIFEST_DIR).glob("*.manifest.json"))
    data: dict[str, object] = json.loads(m.read_text())
    return data


def test_large_files_are_linked_not_copied_on_both_sites(server: SshServer, tmp_path: Path) -> None:
    sites = ssh_sites(tmp_path / "s", server)
    table = big_table(sites.primary, mb=6, files=3)  # ~2 MiB of random bytes per Parquet file
    drsync("backup", "-c", str(sites.config), check=True)
    m = _manifest(sites.primary_meta)
    raw = [b for b in m["bundles"] if b["compression"] == "raw"]  # type: ignore[attr-defined]
    assert len(raw) == 3 and all(b["size"] >= RAW_MIN_BYTES for b in raw)
    assert all(b["blake2b"].startswith("blake3:") for b in m["bundles"])  # type: ignore[attr-defined]
    files = {f["bundle"]: f["path"] for t in m["tables"] for f in t["files"]}  # type: ignore[attr-defined]
    for b in raw:  # primary: the set's raw bundle is the table's file itself (one inode)
        assert os.stat(sites.primary_media / m["key"] / b["name"]).st_ino == \
            os.stat(table / files[b["name"]]).st_ino  # type: ignore[index]
    drsync("restore", "-c", str(sites.config), check=True)
    standby_table = sites.standby / "big" / "raw" / "blobs"
    for b in raw:  # standby: the table's file is the inode the agent received (no copy)
        received = os.stat(sites.standby_media / m["key"] / b["name"])  # type: ignore[index]
        installed = os.stat(standby_table / files[b["name"]])
        assert installed.st_ino == received.st_ino and installed.st_size == b["size"]
    assert rows(duck(), standby_table) == rows(duck(), table)
    v = drsync("verify", "-c", str(sites.config), "--deep")
    assert v.returncode == 0, v.stdout + v.stderr


def test_verify_on_restore_full_refuses_a_flipped_bit_and_the_set_is_sent_again(
        server: SshServer, tmp_path: Path) -> None:
    sites = ssh_sites(tmp_path / "s", server, more="verify-on-restore=full\n")
    table = big_table(sites.primary, mb=3, files=1)
    drsync("backup", "-c", str(sites.config), check=True)
    m = _manifest(sites.primary_meta)
    (b,) = [b for b in m["bundles"] if b["compression"] == "raw"]  # type: ignore[attr-defined]
    inbox = sites.standby_media / m["key"] / b["name"]  # type: ignore[index]
    data = bytearray(inbox.read_bytes())
    data[len(data) // 2] ^= 0x10  # rot in the inbox after the agent's check
    inbox.chmod(0o640)
    inbox.write_bytes(bytes(data))
    r = drsync("restore", "-c", str(sites.config))
    assert r.returncode != 0
    assert b["name"] in r.stdout + r.stderr and "hash check" in r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert not (sites.standby / "big" / "raw" / "blobs").exists()  # nothing applied
    drsync("backup", "-c", str(sites.config), check=True)  # sees the set gone: ships it again
    drsync("restore", "-c", str(sites.config), check=True)
    assert rows(duck(), sites.standby / "big" / "raw" / "blobs") == rows(duck(), table)
