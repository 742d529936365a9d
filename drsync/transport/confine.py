"""What the primary may write on the standby through the agent: exactly what `ship_set` sends,
a set's bundles into the media inbox and its manifest into the metadata inbox. Nothing else
under the agent's roots (its state, role, pair, publications, locks) is the primary's to write:
those are the standby's own facts, and a primary that could rewrite them could make the
standby act on tables it does not replicate (docs/security.md, tests/security/).
"""

from __future__ import annotations

from drsync.errors import TransportError
from drsync.site.layout import SHIPPED_BUNDLE_REL as BUNDLE_REL
from drsync.site.layout import SHIPPED_MANIFEST_REL as MANIFEST_REL


def check_primary_write(op: str, area: object, rel: object) -> None:
    """Raise TransportError unless `op` (put or write) of `rel` in `area` is one a primary makes."""
    if op == "put" and area == "media" and isinstance(rel, str) and BUNDLE_REL.match(rel):
        return
    if op == "write" and area == "metadata" and isinstance(rel, str) and MANIFEST_REL.match(rel):
        return
    shown = rel[:120] if isinstance(rel, str) else repr(rel)[:120]
    raise TransportError(
        f"{op} of {area!r} path {shown!r} refused: the primary may only send a set's bundles "
        f"(media: {BUNDLE_REL.pattern}) and its manifest (metadata: {MANIFEST_REL.pattern})")
