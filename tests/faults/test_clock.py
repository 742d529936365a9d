"""The primary's clock stepping backwards between rounds (NTP correcting a fast clock, a VM
restored from a snapshot): set keys never collide and stay strictly increasing, each set builds
on the one before, barrier times never go back, and the standby converges on the primary.

Injected with the test-only DRSYNC_CLOCK_SHIFT_S hook (drsync/faults.wall_clock), which shifts
the clock the primary cuts its barrier with; the tables' own commits keep the real clock.
"""

from __future__ import annotations

import pyarrow as pa
from deltalake import write_deltalake

from drsync.demo import TABLES, create_sample_warehouse, table_dir
from drsync.site.layout import MANIFEST_DIR
from tests.faults.conftest import Reliability, soak
from tests.helpers import Sites, drsync, duck, read_manifests, rows

# Clock offsets of successive rounds, in seconds: fast by an hour, then corrected, then set back
# by a day, then right again, then a second back.
SHIFTS = [3600, 0, -86400, 0, -1]
if soak(0, 1):
    SHIFTS += [-3600 * k for k in range(1, 9)] + [0] * 4


def _append(sites: Sites, i: int) -> None:
    t = table_dir(sites.primary, "hr.people.employees")
    write_deltalake(str(t), pa.table({"id": pa.array([10_000 + i], pa.int64()), "amount": [float(i)],
                                      "note": [f"clock {i}"]}), mode="append")


def test_clock_going_backwards_between_rounds(sites: Sites, reliability: Reliability) -> None:
    rel = reliability("clock going backwards", "the primary's barrier clock shifted by "
                      f"{', '.join(f'{s:+d} s' for s in SHIFTS)} on successive rounds "
                      "(DRSYNC_CLOCK_SHIFT_S), a write before each")
    create_sample_warehouse(sites.primary, rows=20)
    con = duck()
    for i, shift in enumerate(SHIFTS):
        with rel.trial():
            _append(sites, i)
            env = {"DRSYNC_CLOCK_SHIFT_S": str(shift)}
            drsync("backup", "-c", str(sites.config), env=env, check=True)
            drsync("restore", "-c", str(sites.config), check=True)
            ms = read_manifests(sites.standby_meta / MANIFEST_DIR)
            keys = [m["key"] for m in ms]
            assert len(set(keys)) == len(keys) == i + 1, keys
            assert [m["prior_key"] for m in ms] == [None, *keys[:-1]], "chain out of order"
            barriers = [m["barrier_ms"] for m in ms]
            assert barriers == sorted(barriers) and len(set(barriers)) == len(barriers), \
                f"barrier times went back: {barriers}"
            # With the clock set back, commits stamped after the barrier wait for a later round;
            # a version never goes back, and the standby holds what the set says.
            for name in TABLES:
                vs = [m["versions"][name] for m in ms]
                assert vs == sorted(vs), f"{name}: versions went back {vs}"
                s = table_dir(sites.standby, name)
                assert rows(con, s) == rows(con, table_dir(sites.primary, name), version=vs[-1]), name
    # The clock right again: one more round ships everything.
    with rel.trial():
        drsync("backup", "-c", str(sites.config), env={"DRSYNC_CLOCK_SHIFT_S": "60"}, check=True)
        drsync("restore", "-c", str(sites.config), check=True)
        for name in TABLES:
            assert rows(con, table_dir(sites.standby, name)) == rows(con, table_dir(sites.primary, name))
