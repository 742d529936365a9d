"""Role epoch: records, refusals, and the split-brain guards (standby inbox, agent, primary)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from drsync.demo import create_sample_warehouse
from drsync.errors import RoleError
from drsync.roles.epoch import (
    assert_site_role,
    changing_roles,
    check_peer_epoch,
    read_role,
    refuse_older,
    write_role,
)
from drsync.site.state import PrimaryState, StandbyState, save_state
from drsync.transport.agent import Agent
from drsync.transport.protocol import read_header, write_frame
from tests.helpers import Sites, drsync


def test_role_record_falls_back_to_the_state_files(tmp_path: Path) -> None:
    assert read_role(tmp_path).epoch == 0 and read_role(tmp_path).role is None
    save_state(tmp_path, StandbyState(role_epoch=3))
    assert read_role(tmp_path).epoch == 3
    write_role(tmp_path, "primary", 4, failover_point="x")
    rec = read_role(tmp_path)
    assert (rec.role, rec.epoch) == ("primary", 4)
    (tmp_path / "role.json").write_text("{not json")
    assert read_role(tmp_path).epoch == 3  # a torn record: the state still tells


def test_refuse_older_and_peer_check() -> None:
    refuse_older(2, 2, "x")
    refuse_older(3, 2, "x")
    with pytest.raises(RoleError, match="role epoch 1, older than this site's 2"):
        refuse_older(1, 2, "x")
    check_peer_epoch(None, 0)
    check_peer_epoch(b'{"role": "standby", "epoch": 1}', 1)
    with pytest.raises(RoleError, match="no longer the primary"):
        check_peer_epoch(b'{"role": "primary", "epoch": 2}', 1)


def test_site_role_guard(tmp_path: Path) -> None:
    assert_site_role(tmp_path, "primary", "backup")  # nothing recorded: allowed
    save_state(tmp_path, StandbyState())
    with pytest.raises(RoleError, match="belongs to the standby"):
        assert_site_role(tmp_path, "primary", "backup")
    assert_site_role(tmp_path, "standby", "restore")
    write_role(tmp_path, "primary", 1)
    with pytest.raises(RoleError, match="belongs to the primary since role epoch 1"):
        assert_site_role(tmp_path, "standby", "restore")
    save_state(tmp_path, PrimaryState(role_epoch=1))
    (tmp_path / "role-change.json").write_text("{}")
    with pytest.raises(RoleError, match="role change is unfinished"):
        assert_site_role(tmp_path, "primary", "backup")
    with changing_roles(tmp_path):  # the process carrying out the change may run its round
        assert_site_role(tmp_path, "primary", "backup")


def _exchange(agent: Agent, *requests: dict[str, object]) -> list[dict[str, object]]:
    inp, out = io.BytesIO(), io.BytesIO()
    for req in requests:
        write_frame(inp, req)
    inp.seek(0)
    agent.serve(inp, out)
    out.seek(0)
    replies = []
    while (h := read_header(out)) is not None:
        replies.append(h)
    return replies


def test_agent_refuses_a_caller_of_an_older_epoch(tmp_path: Path) -> None:
    media, meta = tmp_path / "media", tmp_path / "meta"
    media.mkdir()
    meta.mkdir()
    write_role(meta, "standby", 2)
    old = _exchange(Agent(media, meta), {"op": "hello", "role_epoch": 1},
                    {"op": "list", "area": "metadata", "rel": "."})
    assert [r["ok"] for r in old] == [False, False]
    assert old[0]["code"] == "DRS700" and "older than this site's 2" in str(old[0]["error"])
    silent = _exchange(Agent(media, meta), {"op": "list", "area": "metadata", "rel": "."})
    assert silent[0]["ok"] is False  # no hello: counts as epoch 0
    current = _exchange(Agent(media, meta), {"op": "hello", "role_epoch": 2},
                        {"op": "list", "area": "metadata", "rel": "."})
    assert [r["ok"] for r in current] == [True, True]


def test_standby_sets_aside_a_set_of_an_older_epoch(sites: Sites) -> None:
    create_sample_warehouse(sites.primary, rows=5)
    drsync("backup", "-c", str(sites.config), check=True)  # a set of epoch 0 in the inbox
    write_role(sites.standby_meta, "standby", 1)  # the standby moved on (a role change)
    r = drsync("restore", "-c", str(sites.config))
    assert r.returncode == 1 and "comes from role epoch 0, older than this site's 1" in r.stderr, r.stderr
    assert list((sites.standby_meta / "manifests" / "rejected").iterdir())
    assert not list(sites.standby.iterdir())  # nothing applied
    # ... and the old primary cannot ship into it any more either.
    r = drsync("backup", "-c", str(sites.config))
    assert r.returncode == 1 and "no longer the primary" in r.stderr


def test_agent_lets_an_old_primary_in_for_the_reprotect_ops_only(tmp_path: Path) -> None:
    media, meta = tmp_path / "media", tmp_path / "meta"
    media.mkdir()
    meta.mkdir()
    write_role(meta, "primary", 2)
    replies = _exchange(Agent(media, meta),
                        {"op": "hello", "role_epoch": 1, "purpose": "reprotect"},
                        {"op": "write", "area": "metadata", "rel": "x"},  # not a reprotect op
                        {"op": "reprotectinfo"})  # allowed, but this agent has no --config
    assert replies[0]["ok"] is True
    assert replies[1]["ok"] is False and "not allowed on a reprotect connection" in str(replies[1]["error"])
    assert replies[2]["ok"] is False and "without --config" in str(replies[2]["error"])
    assert not (meta / "x").exists()
    # A current caller cannot use the reprotect ops outside a reprotect connection.
    current = _exchange(Agent(media, meta), {"op": "hello", "role_epoch": 2}, {"op": "reprotected"})
    assert current[1]["ok"] is False and "replication connection" in str(current[1]["error"])


def test_a_refused_request_with_a_payload_keeps_the_stream_in_sync(tmp_path: Path) -> None:
    media, meta = tmp_path / "media", tmp_path / "meta"
    media.mkdir()
    meta.mkdir()
    write_role(meta, "standby", 2)
    inp, out = io.BytesIO(), io.BytesIO()
    write_frame(inp, {"op": "hello", "role_epoch": 1})
    write_frame(inp, {"op": "write", "area": "metadata", "rel": "m"}, b"x" * 1000)
    write_frame(inp, {"op": "list", "area": "metadata", "rel": "."})
    inp.seek(0)
    Agent(media, meta).serve(inp, out)
    out.seek(0)
    replies = []
    while (h := read_header(out)) is not None:
        replies.append(h)
    assert len(replies) == 3 and all(r["ok"] is False for r in replies)
    assert all(r["code"] == "DRS700" for r in replies)
    assert not (meta / "m").exists()
