"""Iceberg v3 deletion vectors: the paths inside a Puffin file's footer.

A Puffin file is `Magic Blob* Footer`, the footer `Magic FooterPayload PayloadSize Flags Magic`
(magic `PFA1`, size and flags 4-byte little-endian). The payload is JSON: for each blob its
type, offset, length, optional `compression-codec` and properties. A deletion vector
(`deletion-vector-v1`) blob names the data file it applies to in the property
`referenced-data-file`, an absolute path; the bitmap itself holds positions only.

The rewrite keeps every byte before the footer (the blobs stay at their offsets, so the
`content_offset` / `content_size_in_bytes` that manifests record for each DV stay valid, and a
blob compressed with lz4 or zstd stays as its writer compressed it: no path is inside a blob)
and writes a new footer with the paths rebased. A footer whose payload is compressed (flag
bit 0: one LZ4 frame, as the spec says) is decompressed, rebased and compressed again as one
LZ4 frame with the same flag, so a reader of the spec reads it as it read the primary's. A
flag the spec does not define is refused by name: its meaning (and whether the rewrite keeps
it true) is unknown.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import lz4.frame
import zstandard

from drsync.errors import TableFormatError
from drsync.fsutil import CHUNK, atomic_writer
from drsync.tableformat.iceberg.prefix import rebase_path

MAGIC = b"PFA1"
_TAIL = 12  # PayloadSize(4) Flags(4) Magic(4)
_FLAG_COMPRESSED = 1  # byte 0, bit 0: the footer payload is one LZ4 frame
_KNOWN_FLAGS = _FLAG_COMPRESSED
REFERENCED_DATA_FILE = "referenced-data-file"
_HINT = ("the primary's copy of this deletion-vector file is damaged or not a Puffin file; "
         "repair the table on the primary, then retry")


def _bad(src: Path, why: str) -> TableFormatError:
    return TableFormatError(f"deletion-vector file {src}: {why}", hint=_HINT)


def read_footer(src: Path) -> tuple[dict[str, Any], int]:
    """(footer JSON, offset where the footer starts) of a Puffin file, checked."""
    footer, footer_start, _ = _read_footer(src)
    return footer, footer_start


def _read_footer(src: Path) -> tuple[dict[str, Any], int, int]:
    """(footer JSON, offset where the footer starts, footer flags), checked."""
    try:
        size = src.stat().st_size
        with open(src, "rb") as f:
            head = f.read(4)
            if size < 4 + 4 + _TAIL or head != MAGIC:
                raise _bad(src, "not a Puffin file (no PFA1 magic at the start)")
            f.seek(size - _TAIL)
            tail = f.read(_TAIL)
            payload_size, flags = struct.unpack("<ii", tail[:8])
            if tail[8:] != MAGIC:
                raise _bad(src, "truncated or damaged (no PFA1 magic at the end)")
            footer_start = size - _TAIL - payload_size - 4
            if payload_size < 0 or footer_start < 4:
                raise _bad(src, f"footer size {payload_size} does not fit in {size} bytes")
            f.seek(footer_start)
            if f.read(4) != MAGIC:
                raise _bad(src, "damaged footer (no PFA1 magic before the footer payload)")
            payload = f.read(payload_size)
    except OSError as e:
        raise _bad(src, f"cannot be read ({e})") from e
    if flags & ~_KNOWN_FLAGS:
        raise _bad(src, f"footer flags {flags:#x} set a bit the Puffin spec does not define "
                   "(bit 0, an LZ4-compressed footer, is the only one): drsync cannot tell "
                   "whether a rewritten footer keeps its meaning")
    if flags & _FLAG_COMPRESSED:
        try:
            payload = lz4.frame.decompress(payload)
        except RuntimeError as e:  # what lz4.frame raises for a damaged frame
            raise _bad(src, f"its footer is flagged LZ4-compressed but is no LZ4 frame ({e})") from e
    try:
        footer = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _bad(src, f"footer is not JSON ({e})") from e
    blobs = footer.get("blobs") if isinstance(footer, dict) else None
    if not isinstance(blobs, list):
        raise _bad(src, "footer has no 'blobs' list")
    for i, blob in enumerate(blobs):
        off, length = (blob.get("offset"), blob.get("length")) if isinstance(blob, dict) else (None, None)
        if not isinstance(off, int) or not isinstance(length, int) or off < 4 or length < 0 \
                or off + length > footer_start:
            raise _bad(src, f"blob {i} (offset {off}, length {length}) lies outside the blob area")
    return footer, footer_start, flags


def read_blob(src: Path, blob: dict[str, Any]) -> bytes:
    """The content of one blob of the footer of `src`, decompressed by its codec."""
    codec = blob.get("compression-codec")
    with open(src, "rb") as f:
        f.seek(blob["offset"])
        raw = f.read(blob["length"])
    try:
        if codec is None:
            return raw
        if codec == "lz4":
            return bytes(lz4.frame.decompress(raw))
        if codec == "zstd":  # one frame; its writer may leave the content size out
            return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    except (RuntimeError, zstandard.ZstdError) as e:
        raise _bad(src, f"blob at {blob['offset']} is not valid {codec} ({e})") from e
    raise _bad(src, f"blob at {blob['offset']} has compression codec {codec!r}, which the "
               "Puffin spec does not define (lz4, zstd)")


def rewrite_deletion_vectors(src: Path, dst: Path, old: str, new: str) -> int:
    """Copy the Puffin file `src` to `dst` with each blob's `referenced-data-file` rebased from
    the table location `old` to `new`; `dst` appears complete or not at all. Returns its size."""
    footer, footer_start, flags = _read_footer(src)
    where = f"deletion-vector file {src.name}"
    for blob in footer["blobs"]:
        props = blob.get("properties")
        if isinstance(props, dict) and isinstance(props.get(REFERENCED_DATA_FILE), str):
            props[REFERENCED_DATA_FILE] = rebase_path(
                props[REFERENCED_DATA_FILE], old, new, where=f"{where} ({REFERENCED_DATA_FILE})")
    payload = json.dumps(footer, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if flags & _FLAG_COMPRESSED:
        payload = lz4.frame.compress(payload)
    with open(src, "rb") as fin, atomic_writer(dst, crash="iceberg.deletion_vectors.written") as fout:
        left = footer_start
        while left:
            chunk = fin.read(min(CHUNK, left))
            if not chunk:
                raise _bad(src, "changed while being read")
            fout.write(chunk)
            left -= len(chunk)
        fout.write(MAGIC + payload + struct.pack("<ii", len(payload), flags) + MAGIC)
    return dst.stat().st_size
