"""Path confinement: every path from a Delta log, a manifest or the wire stays inside its root.

Kept free of heavy imports: the `drsync agent` on the standby imports it at every start.
"""

from __future__ import annotations

import re

from drsync.errors import UnsafePathError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def safe_relpath(raw: str, *, table: str, where: str) -> str:
    """Check a root-relative path: no scheme, not absolute, no `..`, no empty parts."""
    if _SCHEME.match(raw) or raw.startswith("/"):
        raise UnsafePathError(
            f"table {table}: {where} uses an absolute path {raw!r}; drsync can only replicate "
            "files inside the table directory",
            hint="rewrite the table (e.g. CREATE TABLE AS) so all its files are relative",
        )
    parts = raw.split("/")
    if any(p in ("", ".", "..") for p in parts) or "\\" in raw or "\x00" in raw:
        raise UnsafePathError(f"table {table}: {where} has a path leaving the table: {raw!r}")
    return raw
