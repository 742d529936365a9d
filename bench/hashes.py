"""Hash throughput on this machine: the algorithm drsync hashes files with (drsync/sets/digest.py).

    .venv/bin/python bench/hashes.py [--mib 256]

Hashes one in-memory buffer of random bytes in 1 MiB updates (drsync's CHUNK, as file_hash and
the streaming hashers feed them), best of 3 per algorithm, GB/s = 10^9 bytes per second.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Callable
from typing import Any

import blake3

CHUNK = 1 << 20


def rate(data: bytes, make: Callable[[], Any]) -> float:
    best = float("inf")
    view = memoryview(data)
    for _ in range(3):
        h = make()
        t = time.perf_counter()
        for i in range(0, len(data), CHUNK):
            h.update(view[i:i + CHUNK])
        h.digest()
        best = min(best, time.perf_counter() - t)
    return len(data) / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256)
    args = ap.parse_args()
    data = os.urandom(args.mib << 20)
    algorithms: list[tuple[str, Callable[[], Any]]] = [
        ("BLAKE2b-256 (hashlib, drsync <= manifest 1.3)", lambda: hashlib.blake2b(digest_size=32)),
        ("SHA-256 (hashlib, OpenSSL)", hashlib.sha256),
        ("BLAKE3 (blake3, 1 thread: drsync)", blake3.blake3),
        ("BLAKE3 (blake3, max_threads=2)", lambda: blake3.blake3(max_threads=2)),
    ]
    print(f"| algorithm | GB/s ({args.mib} MiB, 1 MiB updates, best of 3) |\n|---|---:|")
    for name, make in algorithms:
        print(f"| {name} | {rate(data, make):.2f} |")


if __name__ == "__main__":
    main()
