"""Paths in a Delta log: URL-encoded relative URIs and deletion-vector files, confined to
the table (an absolute path or one leaving the table is refused by name)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from drsync.errors import TableFormatError
from drsync.site.confine import safe_relpath

# --- paths ------------------------------------------------------------------------------

_Z85 = "0123456789abcdefghijklmnopqrstuvwxyz" "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_Z85_INDEX = {c: i for i, c in enumerate(_Z85)}


def _z85_decode(text: str) -> bytes:
    if len(text) % 5:
        raise ValueError("z85 length must be a multiple of 5")
    out = bytearray()
    for i in range(0, len(text), 5):
        value = 0
        for ch in text[i : i + 5]:
            value = value * 85 + _Z85_INDEX[ch]
        out += value.to_bytes(4, "big")
    return bytes(out)


def data_path(uri_path: str, *, table: str, where: str) -> str:
    """`add.path`/`remove.path`/`cdc.path` are URL-encoded relative URIs (Delta protocol)."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri_path):
        return safe_relpath(uri_path, table=table, where=where)  # raises: absolute
    return safe_relpath(unquote(uri_path), table=table, where=where)


def deletion_vector_path(dv: dict[str, Any] | None, *, table: str, where: str) -> str | None:
    """The file a deletion vector lives in, or None for inline DVs."""
    if not dv:
        return None
    # The log is untrusted input: anything but the documented shapes is this table's error,
    # never a Python TypeError/OverflowError that would abort the whole round.
    if not isinstance(dv, dict):
        raise TableFormatError(f"table {table}: {where}: malformed deletion vector {dv!r}")
    storage = dv.get("storageType")
    value = dv.get("pathOrInlineDv") or ""
    if storage == "i":
        return None
    if not isinstance(value, str):
        raise TableFormatError(f"table {table}: {where}: malformed deletion vector {dv!r}")
    if storage == "p":
        safe_relpath(value, table=table, where=where)  # always absolute: raises with the name
        return value
    if storage != "u" or len(value) < 20:
        raise TableFormatError(f"table {table}: {where}: unknown deletion vector {dv!r}")
    prefix, encoded = value[:-20], value[-20:]
    try:
        raw = _z85_decode(encoded)
    except (ValueError, KeyError, OverflowError):  # Overflow: a 5-char group above 2**32
        raise TableFormatError(f"table {table}: {where}: bad deletion vector id {value!r}") from None
    h = raw.hex()
    uuid = f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    name = f"deletion_vector_{uuid}.bin"
    return safe_relpath(f"{prefix}/{name}" if prefix else name, table=table, where=where)


