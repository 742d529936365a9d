"""What the primary may write on the standby through the agent: exactly what `ship_set` sends,
a set's bundles into the media inbox and its manifest into the metadata inbox. Nothing else
under the agent's roots (its state, role, pair, publications, locks) is the primary's to write:
those are the standby's own facts, and a primary that could rewrite them could make the
standby act on tables it does not replicate (docs/security.md, tests/security/).
"""

from __future__ import annotations

import re

from drsync.errors import TransportError

_KEY = r"\d{8}_\d{6}"
# shipping.ship_set: f"{key}/{bundle.name}" with packing's f"{key}_{i:04d}{bundle_suffix}"
BUNDLE_REL = re.compile(rf"^(?P<key>{_KEY})/(?P=key)_\d{{4,6}}\.tar(?:\.zst)?$")
# shipping.ship_set: f"{MANIFEST_DIR}/{key}.manifest.json"
MANIFEST_REL = re.compile(rf"^manifests/{_KEY}\.manifest\.json$")


def check_primary_write(op: str, area: object, rel: object) -> None:
    """Raise TransportError unless `op` (put or write) of `rel` in `area` is one a primary makes."""
    if op == "put" and area == "media" and isinstance(rel, str) and BUNDLE_REL.match(rel):
        return
    if op == "write" and area == "metadata" and isinstance(rel, str) and MANIFEST_REL.match(rel):
        return
    shown = rel[:120] if isinstance(rel, str) else repr(rel)[:120]
    raise TransportError(
        f"{op} of {area!r} path {shown!r} refused: the primary may only send a set's bundles "
        "(media <key>/<key>_NNNN.tar[.zst]) and its manifest (metadata manifests/<key>.manifest.json)")
