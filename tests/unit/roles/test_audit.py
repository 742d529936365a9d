"""The audit log: one JSON line per role command, on each side, never rewritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from drsync.roles.audit import last_entry, read_audit, record, who


def test_audit_lines_on_both_sides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, remote = tmp_path / "a", tmp_path / "b", tmp_path / "other-host"
    a.mkdir()
    b.mkdir()
    monkeypatch.setenv("SUDO_USER", "alice")
    record([a, b, a, remote], "switchover", Path("/etc/drsync/backupRestore.ini"), "done", 1, "final set x")
    assert not remote.exists()  # the other host's directory (SSH) is not created here
    record([a], "failover", Path("/c.ini"), "done", 2)
    assert [e["command"] for e in read_audit(a)] == ["switchover", "failover"]
    first = read_audit(b)[0]
    assert first["who"].startswith("alice") and first["config"] == "/etc/drsync/backupRestore.ini"
    assert first["epoch"] == 1 and first["outcome"] == "done" and first["time"]
    (a / "audit.log").open("a").write("torn{\n")
    assert len(read_audit(a)) == 2
    last = last_entry([a, b])
    assert last is not None and last["command"] in ("switchover", "failover")
    monkeypatch.delenv("SUDO_USER")
    assert "alice" not in who()
