"""Rebase an absolute Iceberg path from the primary's table location to the standby's.

Iceberg writes absolute paths everywhere (metadata JSON, manifest lists, manifests, inside
position-delete files and deletion-vector Puffin footers). The standby keeps its copy at another
location, so every such path is rebased: the part after the primary's table location is kept,
the location is replaced by the standby's. A path that is not under the primary's location, or
that climbs out of it (`..`), is refused: the standby trusts nothing it is sent.

Locations and paths may be written as `file:///abs`, `file:/abs`, `file://localhost/abs` or
as plain paths; they compare by their path part. Other schemes (`s3://...`) compare as written.
The result is written in the form of `new`, as given.
"""

from __future__ import annotations

from drsync.errors import UnsafePathError

_HINT = ("drsync copies only files under the table's own location; rewrite the table so that "
         "all its files live under its location, or leave it out of the publication")


def _path_part(uri: str) -> str:
    """The comparable part of a location or path: `file:` forms reduced to the plain path."""
    if uri.startswith("file://"):
        rest = uri[len("file://"):]
        if rest.startswith("/"):
            return rest
        host, sep, path = rest.partition("/")
        if host == "localhost" and sep:
            return "/" + path
        return uri  # another host: compare as written (it will not match a local location)
    if uri.startswith("file:"):
        return uri[len("file:"):]
    return uri


def relative_part(path: str, old: str, *, where: str) -> str:
    """The part of `path` below the table location `old` ("" for the location itself).

    Raises UnsafePathError naming `where` if `path` is not under `old` or leaves it."""
    base = _path_part(old).rstrip("/")
    p = _path_part(path)
    if not base:
        raise UnsafePathError(f"{where}: the table location {old!r} is empty", hint=_HINT)
    if p == base or p == base + "/":
        return ""
    if not p.startswith(base + "/"):
        raise UnsafePathError(
            f"{where}: path {path!r} is outside the table location {old!r}", hint=_HINT)
    rel = p[len(base) + 1:]
    for seg in rel.split("/"):
        if seg in ("..", "."):
            raise UnsafePathError(
                f"{where}: path {path!r} leaves the table location {old!r} ('{seg}' segment)",
                hint=_HINT)
        if "\x00" in seg:
            raise UnsafePathError(f"{where}: path {path!r} holds a NUL byte", hint=_HINT)
    return rel


def rebase_path(path: str, old: str, new: str, *, where: str) -> str:
    """`path` under the primary's table location `old`, moved under the standby's `new`.

    `where` names what holds the path (file and field) for the refusal message."""
    rel = relative_part(path, old, where=where)
    root = new.rstrip("/")
    return f"{root}/{rel}" if rel else root
