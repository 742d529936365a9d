"""A hostile peer, fuzzed (issue 15, "Also"): agent frames from hypothesis, and hostile
manifests (paths, renames, deletions, desync lists, huge or nested text) against a standby
holding replicated tables and tables of its own. Whatever arrives: nothing is written outside
the standby's roots, no local table is touched, the standby's own state changes only through
a restore, and the agent answers or closes cleanly (never a traceback)."""

from __future__ import annotations

import contextlib
import json
import shutil
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drsync.config import Settings, load_settings
from drsync.errors import DrsyncError, TransportError
from drsync.sets.manifest import key_time, next_key
from drsync.standby.agentops import site_agent
from drsync.standby.restore import run_restore
from tests.helpers import Sites, drsync, make_sites
from tests.security.attack import exchange, raw_frame, snapshot, write_table

REPLICATED = ["db.s.a", "db.s.b"]
LOCAL = ["local.x.mine", "db.s.own"]  # the second one next to replicated tables


@pytest.fixture(scope="module")
def standby(tmp_path_factory: pytest.TempPathFactory) -> tuple[Sites, Settings]:
    sites = make_sites(tmp_path_factory.mktemp("hostile") / "sites",
                       extra="desync-table-operation=drop-desync-table\n")
    for name in REPLICATED:
        write_table(sites.primary, name, [1, 2])
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    for name in LOCAL:
        write_table(sites.standby, name, [100])
    s = load_settings(sites.config)
    pair = {"primary_cluster_id": str(s.primary_cluster_id), "standby_cluster_id": str(s.standby_cluster_id)}
    assert exchange(site_agent(sites.standby_media, sites.standby_meta), {"op": "hello"},
                    {"op": "prepare", **pair})[1]["ok"]  # paired, as `drsync prepare` leaves it
    return sites, s


def _outside(sites: Sites, restoring: bool = False) -> dict[str, tuple[int, int, bytes]]:
    """Everything a peer must never change: the whole test directory but the standby's two
    inboxes (where a primary legitimately ships) and its warehouse (replicated tables come and
    go there), whose local tables are compared on their own; with `restoring`, the standby's
    metadata too (a restore records its progress there)."""
    meta = sites.standby_meta if restoring else sites.standby_meta / "manifests"
    own = snapshot(sites.base.parent, skip=(sites.standby_media, meta, sites.standby))
    for name in LOCAL:
        own.update(snapshot(sites.standby.joinpath(*name.split("."))))
    return own


# ------------------------------------------------------------------ agent frames

_PATHS = st.one_of(
    st.sampled_from([".", "..", "../x", "/etc/passwd", "manifests/../standby-state.json",
                     "standby-state.json", "role.json", "pair.json",
                     "manifests/20260101_000000.manifest.json",
                     "20260101_000000/20260101_000000_0000.tar.zst", "manifests/rejected/x", "a//b",
                     "x\x00y", "x\\y", "../../../../tmp/pwned",
                     "db/s/own/_delta_log/00000000000000000000.json"]),
    st.text(min_size=0, max_size=40),
)
_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=20),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                    max_size=4), max_leaves=8)
_OPS = st.sampled_from(["hello", "stat", "put", "write", "read", "list", "df", "restore", "fingerprint",
                        "promote", "reprotectinfo", "commits", "reprotected", "independent", "prepare",
                        "probe", "bye", "rm", "__init__", "op_write"])


@st.composite
def _frame(draw: st.DrawFn) -> dict[str, Any] | bytes:
    kind = draw(st.sampled_from(["request", "request", "request", "raw", "nested"]))
    if kind == "raw":
        return raw_frame(draw(st.binary(max_size=64)))
    if kind == "nested":
        depth = draw(st.integers(1_000, 60_000))
        return raw_frame(draw(st.sampled_from([b"[", b"{\"a\":"])) * depth)
    area = draw(st.sampled_from(["media", "metadata", "warehouse", ""]))
    req: dict[str, Any] = {"op": draw(_OPS), "area": area, "rel": draw(_PATHS)}
    req.update(draw(st.dictionaries(st.sampled_from(["offset", "size", "blake2b", "table", "version",
                                                     "also_hash", "phase", "epoch", "role_epoch", "host",
                                                     "port", "command", "key_file"]), _VALUES, max_size=4)))
    payload = draw(st.binary(max_size=32))
    if payload:
        return raw_frame(json.dumps({**req, "length": len(payload)}).encode(), payload)
    return req


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(frames=st.lists(_frame(), min_size=1, max_size=6))
def test_agent_frames(standby: tuple[Sites, Settings], frames: list[dict[str, Any] | bytes]) -> None:
    sites, _ = standby
    before = _outside(sites)
    agent = site_agent(sites.standby_media, sites.standby_meta, None, sites.standby)
    # A truncated frame or an over-long header: the agent closes (run_agent exits cleanly).
    with contextlib.suppress(EOFError, TransportError):
        exchange(agent, {"op": "hello"}, *frames)
    assert _outside(sites) == before
    for leftover in sites.standby_media.iterdir():  # what it legitimately received: not the next example's
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    for leftover in (sites.standby_meta / "manifests").glob("2026*"):
        leftover.unlink()


# ------------------------------------------------------------------ hostile manifests

_NAMES = st.sampled_from([*REPLICATED, *LOCAL, "db.s.new", "db.t.a", "local.x", "../../x.y.z", "a.b.c.d"])
_TEXT = st.one_of(st.text(max_size=30), st.just("x\nCRITICAL forged\r\x1b[2J"), st.just("[" * 5000))
_REL = st.sampled_from(["part-0.parquet", "../../../etc/passwd", "_delta_log/00000000000000000000.json",
                        "_delta_log", ".", "a/../../b", "/abs", ""])


@st.composite
def _manifest(draw: st.DrawFn, key: str, prior: str | None) -> dict[str, Any] | str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["[" * 100_000, "{\"key\": " * 40_000, "", "null", "\x00"]))
    tables = [{"name": draw(_NAMES), "table_id": None, "mode": draw(st.sampled_from(["full", "incremental"])),
               "from_version": 0, "to_version": draw(st.integers(0, 999_999)), "files": [],
               "deletions": draw(st.lists(_REL, max_size=3)), "warnings": draw(st.lists(_TEXT, max_size=2)),
               "replace": draw(st.booleans()), "expose_at_once": draw(st.booleans())}
              for _ in range(draw(st.integers(0, 2)))]
    when = "2026-01-01T00:00:00+00:00"
    return {"format_version": "1.1", "key": key, "prior_key": prior, "barrier_utc": when,
            "barrier_ms": 1, "created_utc": when, "tables": tables,
            "versions": draw(st.dictionaries(_NAMES, st.integers(0, 10**9), max_size=3)),
            "desync": [{"name": n, "reason": draw(_TEXT)} for n in draw(st.lists(_NAMES, max_size=3))],
            "renames": [{"from_name": draw(_NAMES), "to_name": draw(_NAMES)}
                        for _ in range(draw(st.integers(0, 2)))]}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_manifests(standby: tuple[Sites, Settings], data: st.DataObject) -> None:
    sites, s = standby
    state = json.loads((sites.standby_meta / "standby-state.json").read_bytes())
    prior = state.get("last_key")
    key = next_key(key_time(prior) + timedelta(seconds=1), prior)
    doc = data.draw(_manifest(key, prior))
    inbox = sites.standby_meta / "manifests" / f"{key}.manifest.json"
    inbox.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    before = _outside(sites, restoring=True)
    with contextlib.suppress(DrsyncError):  # refused, in one line: what a hostile set should get
        run_restore(s)
    assert _outside(sites, restoring=True) == before
    inbox.unlink(missing_ok=True)  # not applied: the next example builds on the same prior key
