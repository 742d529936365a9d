"""The agent wire protocol: length-framed JSON headers, each optionally followed by raw bytes.

    frame   = u32 big-endian header length, header (UTF-8 JSON object)
    payload = exactly header["length"] raw bytes, when the header has a "length"

Requests carry `op`; replies carry `ok` and, on failure, `code` and `error`. Replies come in
request order, so a client may send several requests before reading their replies (window.py
keeps up to 8 puts in flight; the agent finishes each put on a second thread, completions.py).
The command set is fixed and every argument is checked by the agent (`drsync/transport/agent.py`):

    hello [role_epoch] [purpose]   -> version, format, time (clock-skew check); refused when the
                                      caller's role epoch is older than the agent's site, unless
                                      purpose=reprotect (then only the reprotect ops below)
    stat  area rel                 -> size of rel (or null), size of rel.part (or null)
    put   area rel offset length size blake2b + payload
                                   -> append payload to rel.part at offset (hashed as it
                                      arrives); fsync; when it reaches `size`, verify the hash
                                      and rename to rel
    write area rel + payload       -> atomic replace of a small file
    read  area rel                 -> payload (or found=false)
    list  area rel                 -> {name: size} of the regular files in a directory
    df    area                     -> free bytes
    tableread table rel offset length
                                   -> size and a range of one table file under --warehouse-root
                                      (read-only; a standby re-fetching a damaged file)
    restore                        -> run a restore pass now (needs the agent's --config)
    promote epoch key barrier_ms versions table_ids
                                   -> switchover: this standby becomes the primary
    reprotectinfo / commits table / reprotected inventories drop
                                   -> reprotect of an old primary (roles/remote.py)
    independent phase=check|clean  -> set-independent, this side
    bye
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

from drsync.errors import TransportError

PROTOCOL_VERSION = 1
MAX_HEADER = 1 << 20
TABLE_READ_CHUNK = 16 << 20  # tableread: bytes per request, well below read_payload's limit
_LEN = struct.Struct(">I")


class FrameError(TransportError):
    """A frame read whole but unusable (not JSON, nested too deeply, not an object): the
    stream is still in sync, so the agent answers with this error and reads the next one."""


def write_frame(w: BinaryIO, header: dict[str, Any], payload: bytes = b"") -> None:
    if payload:
        header = {**header, "length": len(payload)}
    data = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    w.write(_LEN.pack(len(data)) + data)
    if payload:
        w.write(payload)
    w.flush()


def read_exact(r: BinaryIO, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = r.read(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed with {n - len(buf)} of {n} bytes still expected")
        buf += chunk
    return bytes(buf)


def read_header(r: BinaryIO) -> dict[str, Any] | None:
    """The next header, or None at a clean end of stream."""
    first = r.read(_LEN.size)
    if not first:
        return None
    raw = first if len(first) == _LEN.size else first + read_exact(r, _LEN.size - len(first))
    (n,) = _LEN.unpack(raw)
    if n > MAX_HEADER:
        raise TransportError(f"protocol error: header of {n} bytes (limit {MAX_HEADER})")
    data = read_exact(r, n)
    try:
        header = json.loads(data)
    except ValueError as e:
        raise FrameError(f"protocol error: header is not JSON ({e})") from None
    except RecursionError:  # e.g. 100 kB of `[`: the decoder's recursion limit, not a crash
        raise FrameError("protocol error: header nested too deeply") from None
    if not isinstance(header, dict):
        raise FrameError("protocol error: header is not a JSON object")
    return header


def read_payload(r: BinaryIO, header: dict[str, Any], limit: int = MAX_HEADER * 64) -> bytes:
    n = header.get("length", 0)
    if not isinstance(n, int) or n < 0 or n > limit:
        raise TransportError(f"protocol error: bad payload length {n!r}")
    return read_exact(r, n) if n else b""
