"""The transport interface: what the primary needs from "the other side"."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Literal

# media = restore-media-destination (bundles); metadata = restore-metadata-destination
Area = Literal["media", "metadata"]
SendProgress = Callable[[int], None]


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
