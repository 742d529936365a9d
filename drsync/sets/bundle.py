"""Bundles: a set's files packed as a tar stream inside zstd (the DWS tool's "rch file").

A standard format on purpose: `zstd -dc X.tar.zst | tar t` lists a bundle with stock tools.
Everything streams in 1 MiB chunks, so memory does not grow with table size; each file's
digest (digest.py: BLAKE3, or BLAKE2b in sets before 1.4) is computed while it is read for
packing (one read per byte), and the bundle's own digest while it is written.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import zstandard

from drsync.errors import IntegrityError, disk_full
from drsync.faults import crash_point
from drsync.fsutil import CHUNK, TMP_PREFIX, fsync_dir, open_private
from drsync.nofollow import open_regular_nofollow
from drsync.sets.digest import file_hash, new_hash

__all__ = ["file_hash", "new_hash"]  # re-exported: callers from before digest.py

# compression-level 0..9 onto zstd's 1..19 scale; 0 means store without compression.
ZSTD_LEVELS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 9, 7: 12, 8: 15, 9: 19}
TARGET_BUNDLE_BYTES = 64 << 20

ProgressFn = Callable[[int, int], None]  # (raw bytes read, bytes written to the bundle)


@dataclass
class BundleEntry:
    member: str  # "<db>/<schema>/<table>/<path in table>"
    size: int
    mtime_ns: int
    source: Path | None = None  # read from disk at packing time ...
    content: bytes | None = None  # ... or these bytes, captured at collect time
    # The table directory `source` lies in: the file is then opened without following a
    # symlink anywhere below it, and only if it is a regular file (nofollow.py).
    root: Path | None = None


@dataclass
class PackedFile:
    member: str
    size: int
    blake2b: str


@dataclass
class BundleResult:
    path: Path
    size: int
    blake2b: str
    raw_bytes: int
    packed: list[PackedFile]
    missing: list[str]  # members whose source vanished before packing (e.g. VACUUM)
    compression: Literal["zstd", "none", "raw"] = "zstd"  # raw: one file as it is (rawfile.py)


def worth_compressing(path: Path, sample: int = 256 << 10) -> bool:
    """Does zstd shrink this file? Judged on its first `sample` bytes at level 1 (~0.3 ms).

    Parquet is usually compressed already, but not always well (dictionary-encoded or
    snappy pages often shrink by 10-40 % more): measure rather than guess by file type."""
    try:
        with open(path, "rb") as f:
            head = f.read(sample)
    except OSError:
        return False
    if len(head) < 4096:
        return True  # tiny files: framing dominates, compression is free
    return len(zstandard.ZstdCompressor(level=1).compress(head)) < 0.9 * len(head)


def plan_bundles(entries: list[BundleEntry], target: int = TARGET_BUNDLE_BYTES) -> list[list[BundleEntry]]:
    """Group files into bundles of about `target` bytes, keeping the given order."""
    groups: list[list[BundleEntry]] = []
    current: list[BundleEntry] = []
    size = 0
    for e in entries:
        if current and size + e.size > target:
            groups.append(current)
            current, size = [], 0
        current.append(e)
        size += e.size
    if current:
        groups.append(current)
    return groups


class _HashingReader(io.RawIOBase):
    def __init__(self, f: BinaryIO, on_bytes: Callable[[int], None], like: str | None = None) -> None:
        self._f = f
        self.hash = new_hash(like)
        self.count = 0
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.hash.update(data)
        self.count += len(data)
        self._on_bytes(len(data))
        return data


class _HashingWriter(io.RawIOBase):
    def __init__(self, f: BinaryIO, on_bytes: Callable[[int], None]) -> None:
        self._f = f
        self.hash = new_hash()
        self.count = 0
        self._on_bytes = on_bytes

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._f.write(data)
        self.hash.update(data)
        self.count += len(data)
        self._on_bytes(len(data))
        return len(data)


def write_bundle(
    final: Path,
    entries: list[BundleEntry],
    compression: Literal["zstd", "none"],
    level: int,
    progress: ProgressFn | None = None,
) -> BundleResult:
    """Pack `entries` into `final` (temp name, fsync, rename)."""
    tick = progress or (lambda raw, out: None)
    tmp = final.parent / f"{TMP_PREFIX}{final.name}"
    packed: list[PackedFile] = []
    missing: list[str] = []
    raw_total = 0
    with open_private(tmp) as out:
        writer: Any = _HashingWriter(out, lambda n: tick(0, n))
        sink: Any = writer
        if compression == "zstd":
            cctx = zstandard.ZstdCompressor(level=ZSTD_LEVELS.get(level, 1))
            sink = cctx.stream_writer(writer, closefd=False)
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for e in entries:
                try:
                    src: BinaryIO = (_open_source(e) if e.source else io.BytesIO(e.content or b""))
                except FileNotFoundError:
                    missing.append(e.member)
                    continue
                with src:
                    size = os.fstat(src.fileno()).st_size if e.source else len(e.content or b"")
                    info = tarfile.TarInfo(e.member)
                    info.size = size
                    # Whole seconds: a float mtime costs a PAX header per file (the manifest
                    # carries the exact mtime_ns anyway).
                    info.mtime = e.mtime_ns // 1_000_000_000
                    info.mode = 0o644
                    reader: Any = _HashingReader(src, lambda n: tick(n, 0))
                    tar.addfile(info, reader)
                    packed.append(PackedFile(e.member, size, reader.hash.hexdigest()))
                    raw_total += size
                crash_point("bundle.member_packed")  # the bundle's temp file is half written
        if compression == "zstd":
            sink.close()
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)
    return BundleResult(final, writer.count, writer.hash.hexdigest(), raw_total, packed, missing,
                        compression)


def _open_source(e: BundleEntry) -> BinaryIO:
    assert e.source is not None
    if e.root is None:
        return open(e.source, "rb")  # closed by the caller's `with`
    rel = e.source.relative_to(e.root).as_posix()
    return open_regular_nofollow(e.root, rel, table=".".join(e.member.split("/")[:3]))


@dataclass
class Expected:
    size: int
    blake2b: str
    dest: Path  # where to write the verified file (its directory must exist)


def extract_bundle(
    path: Path,
    compression: str,
    expected: dict[str, Expected],
    progress: Callable[[int], None] | None = None,
    fsync: bool = True,
    whole: tuple[int, str] | None = None,
    in_place: bool = False,
) -> None:
    """Stream a bundle, writing each member to its `dest` only if size and hash match.

    `whole` = (size, blake2b) of the bundle file itself, as the manifest records it: checked on
    the same pass, so a flipped bit outside every member's bytes (tar headers, padding, zstd
    frame fields) is caught too rather than passing as harmless.

    `in_place`: write each member straight to its `dest`, no temp name and rename, for a
    scratch directory that every run rebuilds before use (the standby's staging): a member
    that fails its check is removed, and one cut short by a kill is removed with the rest.

    Raises IntegrityError naming the bundle and member on any mismatch, unknown or missing
    member, or a corrupt/truncated stream. Files already written stay at their `dest`
    (staging), never in a table: the caller applies only after every bundle verified.
    """
    tick = progress or (lambda n: None)
    seen: set[str] = set()
    try:
        with open(path, "rb") as f:
            if whole is not None and os.fstat(f.fileno()).st_size != whole[0]:
                raise IntegrityError(f"bundle {path.name} has {os.fstat(f.fileno()).st_size} bytes, "
                                     f"manifest says {whole[0]} (truncated or replaced)")
            raw: Any = _HashingReader(f, lambda n: None, whole[1] if whole is not None else None)
            stream: Any = zstandard.ZstdDecompressor().stream_reader(raw) if compression == "zstd" else raw
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    exp = expected.get(member.name)
                    if exp is None or not member.isfile() or member.name in seen:
                        raise IntegrityError(f"bundle {path.name}: unexpected member {member.name!r}")
                    if member.size != exp.size:
                        raise IntegrityError(
                            f"bundle {path.name}: {member.name} has {member.size} bytes, "
                            f"manifest says {exp.size}"
                        )
                    src = tar.extractfile(member)
                    assert src is not None
                    h = new_hash(like=exp.blake2b)
                    tmp = exp.dest if in_place else exp.dest.parent / f"{TMP_PREFIX}{exp.dest.name}"
                    with open_private(tmp) as out:
                        while chunk := src.read(CHUNK):
                            h.update(chunk)
                            out.write(chunk)
                            tick(len(chunk))
                            crash_point("extract.chunk")  # a staged file part written
                        out.flush()
                        if fsync:  # else the caller flushes the filesystem once for all
                            os.fsync(out.fileno())
                    if h.hexdigest() != exp.blake2b:
                        tmp.unlink()
                        raise IntegrityError(
                            f"bundle {path.name}: {member.name} fails its {h.title} check (corrupted)"
                        )
                    if not in_place:
                        os.replace(tmp, exp.dest)
                    seen.add(member.name)
            if whole is not None:
                while raw.read(CHUNK):  # the rest of the file (end-of-archive blocks, frame end)
                    pass
                if raw.hash.hexdigest() != whole[1]:
                    raise IntegrityError(f"bundle {path.name} fails its {raw.hash.title} check (corrupted)")
    except IntegrityError:
        raise
    except (tarfile.TarError, zstandard.ZstdError, EOFError, OSError) as e:
        if isinstance(e, OSError) and (full := disk_full(e, f"the staged files of bundle {path.name}")):
            raise full from None  # the bundle is fine: not a reason to set the set aside
        if isinstance(e, FileNotFoundError) and e.filename == str(path):
            raise IntegrityError(f"bundle {path} is missing") from None
        raise IntegrityError(f"bundle {path.name} is corrupt or truncated: {e}") from None
    missing = set(expected) - seen
    if missing:
        raise IntegrityError(
            f"bundle {path.name} lacks {len(missing)} file(s) the manifest lists, "
            f"e.g. {sorted(missing)[0]}"
        )
