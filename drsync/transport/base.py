"""The transport interface: what the primary needs from "the other side"."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# media = restore-media-destination (bundles); metadata = restore-metadata-destination
Area = Literal["media", "metadata"]
SendProgress = Callable[[int], None]


@dataclass(frozen=True)
class Outgoing:
    """One file to deliver: `local` as `rel`, of `size` bytes with digest `digest`."""

    local: Path
    rel: str
    size: int
    digest: str


class Transport(ABC):
    """Paths are relative to an area root and are never absolute or contain `..`."""

    @abstractmethod
    def send_file(
        self, local: Path, area: Area, rel: str, *, size: int, blake2b: str,
        progress: SendProgress | None = None,
    ) -> int:
        """Deliver `local` as `rel`: into a temp name, resuming from bytes already there,
        verified against `blake2b` on the receiving side, fsynced, then renamed. Returns the
        bytes actually sent (0 when the file was already complete there)."""

    def send_files(
        self, area: Area, files: Sequence[Outgoing], *, workers: int,
        progress: SendProgress | None = None, done: Callable[[Outgoing], None] | None = None,
    ) -> int:
        """Deliver every file as send_file does, `workers` at a time; `done(file)` once each is
        in place on the other side. Returns the bytes actually sent."""
        def one(f: Outgoing) -> int:
            n = self.send_file(f.local, area, f.rel, size=f.size, blake2b=f.digest, progress=progress)
            if done is not None:
                done(f)
            return n

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            return sum(pool.map(one, files))

    @abstractmethod
    def write_bytes(self, area: Area, rel: str, data: bytes) -> None:
        """Atomically create or replace a small file (manifests, state)."""

    @abstractmethod
    def read_bytes(self, area: Area, rel: str) -> bytes | None:
        """A small file's content, or None if it does not exist."""

    @abstractmethod
    def list_dir(self, area: Area, rel: str) -> dict[str, int]:
        """Names and sizes of regular files in a directory (empty if it does not exist)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
