"""Findings 3, 4 and 8 of issue 15: a manifest in the standby's inbox is the primary's word;
the standby never takes it about tables it does not replicate, and logs its text safely."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from drsync.config import load_settings
from drsync.errors import ManifestError
from drsync.standby.agentops import site_agent
from drsync.standby.restore import run_restore
from tests.helpers import Sites, drsync, duck, rows
from tests.security.attack import (
    edit_manifest,
    exchange,
    newest_inbox_manifest,
    raw_frame,
    snapshot,
    write_table,
)


def _two_rounds(sites: Sites) -> Path:
    """db.s.a replicated; a local table on the standby; a second set waiting in the inbox."""
    write_table(sites.primary, "db.s.a", [1])
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    local = write_table(sites.standby, "local.x.mine", [100])
    write_table(sites.primary, "db.s.a", [2])
    drsync("backup", "-c", str(sites.config), check=True)
    return local


def test_renames_move_only_replicated_tables(sites: Sites) -> None:
    """Finding 4: `renames` moved a standby table drsync never replicated (and made it read-only)."""
    local = _two_rounds(sites)
    before = snapshot(local)
    edit_manifest(newest_inbox_manifest(sites), lambda m: m["renames"].append(
        {"from_name": "local.x.mine", "to_name": "db.s.stolen"}))
    drsync("restore", "-c", str(sites.config), check=True)
    assert snapshot(local) == before and os.access(local, os.W_OK)
    assert not (sites.standby / "db" / "s" / "stolen").exists()
    assert rows(duck(), sites.standby / "db" / "s" / "a") == [(1,), (2,)]


def test_a_primary_cannot_forge_the_standby_state_to_delete_a_local_table(sites: Sites) -> None:
    """Finding 3, the reported attack: through the agent, the primary rewrote the standby's
    state (a local table "replicated" at version 999999), then shipped a manifest deleting every
    file of that table; restore reported success and the local table was empty."""
    local = _two_rounds(sites)
    with open(sites.config, "a") as f:
        f.write("desync-table-operation=drop-desync-table\n")
    before = snapshot(local)
    files = [str(p.relative_to(local)) for p in local.rglob("*") if p.is_file()]
    state = json.loads((sites.standby_meta / "standby-state.json").read_bytes())
    state["tables"]["local.x.mine"] = {"version": 999999, "table_id": None, "barrier_ms": 0}
    forged = json.dumps(state).encode()
    agent = site_agent(sites.standby_media, sites.standby_meta)
    header = {"op": "write", "area": "metadata", "rel": "standby-state.json", "length": len(forged)}
    exchange(agent, {"op": "hello"}, raw_frame(json.dumps(header).encode(), forged))

    def hostile(m: dict[str, Any]) -> None:
        m["tables"].append({"name": "local.x.mine", "table_id": None, "mode": "incremental",
                            "from_version": 0, "to_version": 0, "files": [], "deletions": files})
        m["desync"].append({"name": "local.x.mine", "reason": "gone"})

    edit_manifest(newest_inbox_manifest(sites), hostile)
    r = drsync("restore", "-c", str(sites.config))
    assert "Traceback" not in r.stderr
    assert snapshot(local) == before


def test_manifest_text_cannot_forge_log_lines(sites: Sites, caplog: pytest.LogCaptureFixture) -> None:
    """Finding 8: a warning carrying a newline forged a CRITICAL line in the standby's log."""
    _two_rounds(sites)
    forged = "ok\n2026-01-01 00:00:00,000 CRITICAL drsync.standby.restore: standby compromised\x1b[2J"
    edit_manifest(newest_inbox_manifest(sites), lambda m: m["tables"][0]["warnings"].append(forged))
    with caplog.at_level(logging.WARNING):
        run_restore(load_settings(sites.config))
    messages = [r.getMessage() for r in caplog.records]
    assert any("standby compromised" in m for m in messages)
    assert not any("\n" in m or "\x1b" in m for m in messages), messages


def test_a_deeply_nested_manifest_is_a_clean_error(sites: Sites) -> None:
    """Finding 8: a manifest of 100 kB of `[` raised RecursionError out of restore."""
    _two_rounds(sites)
    newest_inbox_manifest(sites).write_text("[" * 100_000)
    with pytest.raises(ManifestError, match="nested too deeply"):
        run_restore(load_settings(sites.config))
    r = drsync("restore", "-c", str(sites.config))
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
