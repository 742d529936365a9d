"""drsync.sets.digest: digests that name their algorithm; BLAKE2b ones (manifests <= 1.3) still check."""

from __future__ import annotations

import hashlib
from pathlib import Path

import blake3
import pytest

from drsync.sets.digest import ALGORITHM, algorithm_of, data_hash, file_hash, file_matches, new_hash


def test_new_digests_are_blake3_and_say_so(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # several chunks
    (tmp_path / "f").write_bytes(data)
    assert ALGORITHM == "blake3"
    want = "blake3:" + blake3.blake3(data).hexdigest()  # the reference implementation's answer
    assert file_hash(tmp_path / "f") == data_hash(data) == want
    assert algorithm_of(want) == "blake3"


def test_a_bare_digest_is_blake2b_and_is_checked_as_such(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"old set")
    old = hashlib.blake2b(b"old set", digest_size=32).hexdigest()  # as manifests <= 1.3 wrote it
    assert algorithm_of(old) == "blake2b"
    assert file_hash(tmp_path / "f", like=old) == old
    assert file_matches(tmp_path / "f", old)
    (tmp_path / "f").write_bytes(b"old sex")
    assert not file_matches(tmp_path / "f", old)
    assert not file_matches(tmp_path / "f", data_hash(b"old set"))


@pytest.mark.parametrize("bad", ["", "ab" * 31, "AB" * 32, "md5:" + "ab" * 32, "blake3:" + "zz" * 32,
                                 "blake3:blake3:" + "ab" * 32])
def test_anything_else_is_no_digest(bad: str) -> None:
    with pytest.raises(ValueError, match="not a digest"):
        algorithm_of(bad)
    with pytest.raises(ValueError):
        new_hash(like=bad)
