"""Where an Iceberg table keeps its metadata, and local paths of Iceberg locations.

A leaf module: both `metadata` (the pointer and the metadata chain) and `catalog` (the SQL
catalog's rows) need these, and `metadata` asks `catalog` for a catalog table's pointer.
"""

from __future__ import annotations

META_DIR = "metadata"
HINT = f"{META_DIR}/version-hint.text"
SCHEMES = ("file://", "file:")


def local_path(uri: str) -> str | None:
    """The local file path of a location or file path (`/x`, `file:/x`, `file:///x`), None if
    it is not on a local file system (s3://...)."""
    for scheme in SCHEMES:
        if uri.startswith(scheme):
            rest = uri[len(scheme):]
            return rest if rest.startswith("/") else None
    return uri if uri.startswith("/") else None
