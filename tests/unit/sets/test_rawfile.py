"""drsync.sets.rawfile: a large file placed by a link (the opened inode), hashed once; staged by a
link on the standby; refused when missing, not regular, of another size or (full) corrupted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drsync.errors import IntegrityError, UnsafePathError
from drsync.sets.bundle import BundleEntry
from drsync.sets.digest import data_hash
from drsync.sets.rawfile import own_copy, place_raw, stage_raw

DATA = os.urandom(3 << 20)


def entry(root: Path, rel: str = "part-0.parquet") -> BundleEntry:
    return BundleEntry(f"db/s/t/{rel}", len(DATA), 1, source=root / rel, root=root)


def test_place_links_the_source_and_hashes_it_once(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "part-0.parquet").write_bytes(DATA)
    (tmp_path / "set").mkdir()
    r = place_raw(tmp_path / "set" / "k_0000.raw", entry(tmp_path / "t"))
    assert r.compression == "raw" and r.size == r.raw_bytes == len(DATA) and r.missing == []
    assert r.blake2b == data_hash(DATA) == r.packed[0].blake2b
    placed, source = tmp_path / "set" / "k_0000.raw", tmp_path / "t" / "part-0.parquet"
    assert os.stat(placed).st_ino == os.stat(source).st_ino
    assert sorted(os.listdir(tmp_path / "set")) == ["k_0000.raw"]  # no temp name left


def test_place_reports_a_vanished_source_and_refuses_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "set").mkdir()
    r = place_raw(tmp_path / "set" / "k_0000.raw", entry(tmp_path / "t"))
    assert r.missing == ["db/s/t/part-0.parquet"] and r.packed == []
    (tmp_path / "secret").write_bytes(DATA)
    (tmp_path / "t" / "part-0.parquet").symlink_to(tmp_path / "secret")
    with pytest.raises(UnsafePathError, match=r"part-0[.]parquet"):
        place_raw(tmp_path / "set" / "k_0000.raw", entry(tmp_path / "t"))
    assert not (tmp_path / "set" / "k_0000.raw").exists()


def test_stage_links_the_received_file(tmp_path: Path) -> None:
    inbox, dest = tmp_path / "k_0000.raw", tmp_path / "stage" / "part-0.parquet"
    inbox.write_bytes(DATA)
    dest.parent.mkdir()
    for verify in (False, True):
        stage_raw(inbox, len(DATA), data_hash(DATA), dest, verify)
        assert os.stat(dest).st_ino == os.stat(inbox).st_ino


def test_stage_refuses_what_does_not_match(tmp_path: Path) -> None:
    inbox, dest = tmp_path / "k_0000.raw", tmp_path / "part-0.parquet"
    with pytest.raises(IntegrityError, match=r"k_0000[.]raw of the set is missing"):
        stage_raw(inbox, len(DATA), data_hash(DATA), dest, False)
    inbox.write_bytes(DATA[:-1])
    with pytest.raises(IntegrityError, match=rf"k_0000[.]raw has {len(DATA) - 1} bytes, manifest says"):
        stage_raw(inbox, len(DATA), data_hash(DATA), dest, False)
    flipped = bytearray(DATA)
    flipped[12345] ^= 1
    inbox.write_bytes(bytes(flipped))
    stage_raw(inbox, len(DATA), data_hash(DATA), dest, False)  # off: the agent's check stands
    dest.unlink()
    with pytest.raises(IntegrityError, match=r"k_0000[.]raw fails its hash check"):
        stage_raw(inbox, len(DATA), data_hash(DATA), dest, True)
    assert not dest.exists()
    inbox.unlink()
    (tmp_path / "elsewhere").write_bytes(DATA)
    inbox.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(IntegrityError, match="not a regular file"):
        stage_raw(inbox, len(DATA), data_hash(DATA), dest, False)
    assert not dest.exists()


def test_own_copy_gives_a_linked_file_its_own_inode(tmp_path: Path) -> None:
    (tmp_path / "inbox").write_bytes(b"metadata")
    os.link(tmp_path / "inbox", tmp_path / "staged")
    own_copy(tmp_path / "staged")
    (tmp_path / "staged").write_bytes(b"rewritten")  # what a rewrite on install may do
    assert (tmp_path / "inbox").read_bytes() == b"metadata"
    ino = os.stat(tmp_path / "staged").st_ino
    own_copy(tmp_path / "staged")  # alone already: unchanged
    assert os.stat(tmp_path / "staged").st_ino == ino
