"""Drill records: which forks exist and which barrier each holds (roles/drill.py makes them).

Kept on the site level because retention (site/retention.py) must keep every barrier map a
live drill holds, and must not depend on the drill commands to know that.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from drsync.config import Settings
from drsync.fsutil import read_json
from drsync.site.layout import DRILLS_DIR, WarehouseLayout

__all__ = ["DRILLS_DIR", "DrillRecord", "barrier_maps_dir", "drills_dir", "held_barriers", "load_records"]


class DrillRecord(BaseModel):
    name: str
    key: str  # the barrier forked
    into: str  # DIR
    tmp: str  # where it is built, beside DIR (and where drop moves it before removing it)
    token: str
    state: Literal["building", "ready", "dropping"] = "building"
    tables: dict[str, int] = {}  # table -> version at the barrier
    created: str = ""
    ready_ns: int = 0  # wall clock when the fork was complete: files newer were written since
    copy_data: bool = False
    log_bytes: int = 0
    linked_bytes: int = 0
    copied_bytes: int = 0


def drills_dir(settings: Settings) -> Path:
    return settings.restore_metadata_destination / DRILLS_DIR


def barrier_maps_dir(settings: Settings) -> Path:
    return WarehouseLayout(settings.standby_warehouse).barriers


def load_records(settings: Settings) -> list[DrillRecord]:
    out: list[DrillRecord] = []
    with contextlib.suppress(FileNotFoundError):
        for e in sorted(os.scandir(drills_dir(settings)), key=lambda e: e.name):
            if e.name.endswith(".json") and not e.name.startswith("."):
                with contextlib.suppress(ValueError, OSError):
                    out.append(DrillRecord.model_validate(read_json(Path(e.path))))
    return out


def held_barriers(settings: Settings) -> set[str]:
    """Barrier keys live drills hold (retention must keep their barrier maps)."""
    return {r.key for r in load_records(settings)}


