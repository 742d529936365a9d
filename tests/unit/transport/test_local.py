"""drsync.transport.local: resumable, verified delivery into the standby's directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drsync.errors import IntegrityError, UnsafePathError
from drsync.fsutil import CHUNK
from drsync.sets.bundle import file_hash
from drsync.transport.local import PART_SUFFIX, LocalTransport

SIZE = 3 * CHUNK + 12_345  # several chunks and a tail


@pytest.fixture
def transport(tmp_path: Path) -> LocalTransport:
    return LocalTransport(tmp_path / "standby" / "media", tmp_path / "standby" / "meta")


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, str]:
    src = tmp_path / "primary" / "b0.tar.zst"
    src.parent.mkdir(parents=True)
    src.write_bytes(os.urandom(SIZE))
    return src, file_hash(src)


def dest_of(tmp_path: Path, rel: str) -> Path:
    return tmp_path / "standby" / "media" / rel


def send(t: LocalTransport, src: tuple[Path, str], rel: str) -> tuple[int, int]:
    """(returned bytes sent, bytes reported through progress)."""
    seen: list[int] = []
    sent = t.send_file(src[0], "media", rel, size=SIZE, blake2b=src[1], progress=seen.append)
    return sent, sum(seen)


def test_fresh_send(transport: LocalTransport, source: tuple[Path, str], tmp_path: Path) -> None:
    sent, reported = send(transport, source, "sets/k1/b0.tar.zst")
    assert sent == reported == SIZE
    dest = dest_of(tmp_path, "sets/k1/b0.tar.zst")
    assert dest.read_bytes() == source[0].read_bytes()
    assert os.listdir(dest.parent) == [dest.name]  # no .part left


@pytest.mark.parametrize("have", [1, CHUNK, CHUNK + 1, SIZE - 1])
def test_resume_from_partial(transport: LocalTransport, source: tuple[Path, str],
                             tmp_path: Path, have: int) -> None:
    dest = dest_of(tmp_path, "b0.tar.zst")
    dest.parent.mkdir(parents=True)
    part = dest.with_name(dest.name + PART_SUFFIX)
    part.write_bytes(source[0].read_bytes()[:have])
    sent, reported = send(transport, source, "b0.tar.zst")
    assert sent == reported == SIZE - have
    assert dest.read_bytes() == source[0].read_bytes()
    assert not part.exists()


def test_partial_complete_but_not_renamed(transport: LocalTransport, source: tuple[Path, str],
                                          tmp_path: Path) -> None:
    """Crash between the last byte and the rename: nothing left to send."""
    dest = dest_of(tmp_path, "b0.tar.zst")
    dest.parent.mkdir(parents=True)
    dest.with_name(dest.name + PART_SUFFIX).write_bytes(source[0].read_bytes())
    sent, _ = send(transport, source, "b0.tar.zst")
    assert sent == 0
    assert dest.read_bytes() == source[0].read_bytes()


def test_corrupt_partial_restarts(transport: LocalTransport, source: tuple[Path, str],
                                  tmp_path: Path) -> None:
    dest = dest_of(tmp_path, "b0.tar.zst")
    dest.parent.mkdir(parents=True)
    part = dest.with_name(dest.name + PART_SUFFIX)
    torn = bytearray(source[0].read_bytes()[:CHUNK])
    torn[100] ^= 0xFF  # a torn write: right length, wrong bytes
    part.write_bytes(bytes(torn))
    sent, reported = send(transport, source, "b0.tar.zst")
    assert dest.read_bytes() == source[0].read_bytes()
    assert not part.exists()
    assert sent == reported
    assert sent >= SIZE  # the whole file went again


def test_oversized_partial_restarts(transport: LocalTransport, source: tuple[Path, str],
                                    tmp_path: Path) -> None:
    dest = dest_of(tmp_path, "b0.tar.zst")
    dest.parent.mkdir(parents=True)
    part = dest.with_name(dest.name + PART_SUFFIX)
    part.write_bytes(source[0].read_bytes() + b"extra")
    sent, _ = send(transport, source, "b0.tar.zst")
    assert sent == SIZE
    assert dest.read_bytes() == source[0].read_bytes()


def test_already_complete_skipped(transport: LocalTransport, source: tuple[Path, str],
                                  tmp_path: Path) -> None:
    assert send(transport, source, "b0.tar.zst")[0] == SIZE
    dest = dest_of(tmp_path, "b0.tar.zst")
    inode = dest.stat().st_ino
    assert send(transport, source, "b0.tar.zst") == (0, 0)
    assert dest.stat().st_ino == inode


def test_wrong_existing_file_replaced(transport: LocalTransport, source: tuple[Path, str],
                                      tmp_path: Path) -> None:
    dest = dest_of(tmp_path, "b0.tar.zst")
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"x" * SIZE)  # same size, other content
    assert send(transport, source, "b0.tar.zst")[0] == SIZE
    assert dest.read_bytes() == source[0].read_bytes()


def test_hash_mismatch_gives_up(transport: LocalTransport, source: tuple[Path, str],
                                tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="hash mismatch"):
        transport.send_file(source[0], "media", "b0.tar.zst", size=SIZE, blake2b="00" * 32)
    dest = dest_of(tmp_path, "b0.tar.zst")
    assert not dest.exists()
    assert not dest.with_name(dest.name + PART_SUFFIX).exists()


@pytest.mark.parametrize("rel", ["../escape", "sets/../../escape", "/etc/passwd",
                                 "ssh://host/x", "", "a//b"])
def test_refuses_unsafe_paths(transport: LocalTransport, source: tuple[Path, str],
                              tmp_path: Path, rel: str) -> None:
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(UnsafePathError):
        transport.send_file(source[0], "media", rel, size=SIZE, blake2b=source[1])
    with pytest.raises(UnsafePathError):
        transport.write_bytes("metadata", rel, b"x")
    with pytest.raises(UnsafePathError):
        transport.read_bytes("metadata", rel)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_small_files_and_listing(transport: LocalTransport, tmp_path: Path) -> None:
    assert transport.read_bytes("metadata", "manifests/k1.manifest.json") is None
    assert transport.list_dir("metadata", "manifests") == {}
    transport.write_bytes("metadata", "manifests/k1.manifest.json", b"{}\n")
    transport.write_bytes("metadata", "manifests/k2.manifest.json", b"{ }\n")
    transport.write_bytes("metadata", "manifests/k1.manifest.json", b'{"a":1}\n')
    (tmp_path / "standby" / "meta" / "manifests" / "sub").mkdir()
    assert transport.read_bytes("metadata", "manifests/k1.manifest.json") == b'{"a":1}\n'
    assert transport.list_dir("metadata", "manifests") == {
        "k1.manifest.json": 8, "k2.manifest.json": 4}
    assert transport.list_dir("media", "manifests") == {}  # areas are separate roots
