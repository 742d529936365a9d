"""File digests: which hash drsync uses, and how a digest names its algorithm.

BLAKE3 (the `blake3` package, one thread) since manifest 1.4: 4.8 GB/s on one core of this
machine against BLAKE2b's 0.95 and OpenSSL SHA-256's 1.8 (bench/RESULTS.md, "Hash"). One thread,
because the two cores are busy with encryption and compression while a set ships.

A digest is a string that says its own algorithm, so every place that stores one (manifest
`blake2b` fields, file-hashes/, transport requests) carries it per file without a new field:
  - bare 64 hex digits: BLAKE2b-256, as every manifest before 1.4 wrote it (still restores);
  - "blake3:<64 hex digits>": BLAKE3-256.
Checking a file against a digest hashes it with the digest's algorithm (`file_hash(p, like=d)`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import blake3

from drsync.fsutil import CHUNK

ALGORITHM = "blake3"  # what new digests use
LEGACY = "blake2b"  # digests without a prefix
ALGORITHMS = (LEGACY, ALGORITHM)
TITLES = {LEGACY: "BLAKE2b", ALGORITHM: "BLAKE3"}  # for messages
_HEX = frozenset("0123456789abcdef")


def algorithm_of(digest: str) -> str:
    """The algorithm a digest was made with; ValueError for anything that is not a digest."""
    alg, sep, hexpart = digest.rpartition(":")
    if not sep:
        alg = LEGACY
    if alg not in ALGORITHMS or len(hexpart) != 64 or not set(hexpart) <= _HEX:
        raise ValueError(f"{digest[:80]!r} is not a digest drsync knows (BLAKE2b hex or 'blake3:<hex>')")
    return alg


class Hasher:
    """hashlib-like: update() and a hexdigest() that carries the algorithm's prefix."""

    def __init__(self, algorithm: str = ALGORITHM) -> None:
        self.algorithm = algorithm
        if algorithm == ALGORITHM:
            self._h: Any = blake3.blake3()  # max_threads=1: see the module doc
        elif algorithm == LEGACY:
            self._h = hashlib.blake2b(digest_size=32)
        else:
            raise ValueError(f"unknown hash algorithm {algorithm!r}")

    @property
    def title(self) -> str:
        return TITLES[self.algorithm]

    def update(self, data: bytes | memoryview) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        hx: str = self._h.hexdigest()
        return hx if self.algorithm == LEGACY else f"{self.algorithm}:{hx}"


def new_hash(like: str | None = None) -> Hasher:
    """A hasher for new digests, or for checking against the digest `like`."""
    return Hasher(ALGORITHM if like is None else algorithm_of(like))


def file_hash(path: Path, like: str | None = None) -> str:
    h = new_hash(like)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def data_hash(data: bytes, like: str | None = None) -> str:
    h = new_hash(like)
    h.update(data)
    return h.hexdigest()


def file_matches(path: Path, digest: str) -> bool:
    """Does the file at `path` have this digest (hashed with the digest's algorithm)?"""
    return file_hash(path, like=digest) == digest
