"""`transport=local`: the standby's directories are on this host (demos, tests, NFS)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from drsync.errors import IntegrityError, TransportError
from drsync.faults import crash_point
from drsync.fsutil import CHUNK, atomic_write_bytes, ensure_dir, fsync_dir, open_private
from drsync.sets.digest import file_hash
from drsync.site.confine import safe_relpath
from drsync.transport.base import Area, SendProgress, Transport

PART_SUFFIX = ".part"


class LocalTransport(Transport):
    def __init__(self, media_root: Path, metadata_root: Path) -> None:
        self._roots: dict[str, Path] = {"media": media_root, "metadata": metadata_root}

    def _path(self, area: Area, rel: str) -> Path:
        safe_relpath(rel, table="(transport)", where=f"{area} path")
        return self._roots[area] / rel

    def send_file(
        self, local: Path, area: Area, rel: str, *, size: int, blake2b: str,
        progress: SendProgress | None = None,
    ) -> int:
        dest = self._path(area, rel)
        try:
            ensure_dir(dest.parent)
            if dest.exists() and dest.stat().st_size == size and file_hash(dest, like=blake2b) == blake2b:
                return 0
            part = dest.with_name(dest.name + PART_SUFFIX)
            sent = 0
            for attempt in (1, 2):
                have = part.stat().st_size if part.exists() else 0
                if have > size:
                    part.unlink()
                    have = 0
                sent += _copy_from(local, part, have, progress)
                if file_hash(part, like=blake2b) == blake2b:
                    break
                # A corrupt partial file (e.g. torn write): start over once, then give up.
                part.unlink()
                if attempt == 2:
                    raise IntegrityError(f"{rel}: hash mismatch after transfer to {dest}")
            os.replace(part, dest)
            fsync_dir(dest.parent)
            return sent
        except OSError as e:
            raise TransportError(f"cannot write {dest}: {e.strerror or e}") from None

    def write_bytes(self, area: Area, rel: str, data: bytes) -> None:
        dest = self._path(area, rel)
        try:
            ensure_dir(dest.parent)
            atomic_write_bytes(dest, data)
        except OSError as e:
            raise TransportError(f"cannot write {dest}: {e.strerror or e}") from None

    def read_bytes(self, area: Area, rel: str) -> bytes | None:
        try:
            return self._path(area, rel).read_bytes()
        except FileNotFoundError:
            return None

    def list_dir(self, area: Area, rel: str) -> dict[str, int]:
        out: dict[str, int] = {}
        with contextlib.suppress(FileNotFoundError):
            for e in os.scandir(self._path(area, rel)):
                if e.is_file(follow_symlinks=False):
                    out[e.name] = e.stat().st_size
        return out


def _copy_from(src: Path, part: Path, offset: int, progress: SendProgress | None) -> int:
    sent = 0
    with open(src, "rb") as fin, open_private(part, truncate=False) as fout:
        fout.seek(offset)
        fin.seek(offset)
        while chunk := fin.read(CHUNK):
            fout.write(chunk)
            sent += len(chunk)
            crash_point("ship.chunk")  # the .part file on the standby part written
            if progress:
                progress(len(chunk))
        fout.flush()
        os.fsync(fout.fileno())
    return sent
