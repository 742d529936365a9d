"""`show-progress --format dws`: exactly the DWS tool's document, for monitoring that parses it.

drsync's default document (site/document.py, assembled by roles/status.py) adds fields
and fills `unrestoreKeys` on both sides. This one keeps the field set and order of the spec
(docs/dws-migration.md lists them) and the DWS tool's conventions:

* `unrestoreKeys` is a standby fact: the primary side always says `N/A`;
* `errorMsg` of a side whose last action ended without error is `Success` (the DWS tool never
  leaves it empty after a finished action); "" before any action;
* times are local `YYYY-MM-DD HH:MM:SS`, rates `<MB per second, one decimal>MB/s`, as stored.
"""

from __future__ import annotations

from typing import Any

from drsync.site.document import build_document
from drsync.site.state import PrimaryState, SideProgress, StandbyState

SUCCESS_MSG = "Success"
SIDE_FIELDS = tuple(SideProgress.model_fields)
TOP_FIELDS = ("primary cluster", "standby cluster", "apply", "latestBarrierTime",
              "recovery point objective", "failover recovery point time")
APPLY_FIELDS = ("backupState", "restoreState", "backupSuccessTime", "restoreSuccessTime")


def _side(side: dict[str, Any]) -> dict[str, Any]:
    out = {name: side[name] for name in SIDE_FIELDS}
    if not out["errorCode"] and not out["errorMsg"] and out["actionEndTime"]:
        out["errorMsg"] = SUCCESS_MSG
    return out


def dws_document(primary: PrimaryState, standby: StandbyState) -> dict[str, Any]:
    """The show-progress document with the DWS tool's fields only, in its order."""
    doc = build_document(primary, standby).as_json()
    p_side, s_side = _side(doc["primary cluster"]), _side(doc["standby cluster"])
    p_side["unrestoreKeys"] = "N/A"
    return {
        "primary cluster": p_side,
        "standby cluster": s_side,
        "apply": {name: doc["apply"][name] for name in APPLY_FIELDS},
        **{name: doc[name] for name in TOP_FIELDS[3:]},
    }
