"""Findings 1, 3, 6 and 8 of issue 15: what a hostile primary can make the standby's agent do
through its own protocol. Each test performs the attack on a real Agent."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from drsync.standby.agentops import site_agent
from drsync.transport.agent import Agent
from tests.security.attack import exchange, raw_frame

KEY = "20260101_000000"


def _agent(tmp_path: Path) -> Agent:
    media, meta = tmp_path / "roots" / "media", tmp_path / "roots" / "metadata"
    media.mkdir(parents=True)
    meta.mkdir(parents=True)
    return site_agent(media, meta)


def test_probe_takes_nothing_from_the_caller(tmp_path: Path) -> None:
    """Finding 1: host, port, user, key, known_hosts and command of a probe came from the
    request: the standby connected wherever the primary said, with the key it named."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    key = tmp_path / "id"
    key.write_text("not a key")
    key.chmod(0o600)
    replies = exchange(_agent(tmp_path), {"op": "hello"}, {
        "op": "probe", "host": "127.0.0.1", "port": port, "user": "root", "key_file": str(key),
        "known_hosts": str(tmp_path / "kh"), "command": ["cat", "/etc/shadow", ";"]})
    try:
        conn, _ = listener.accept()
        conn.close()
        connected = True
    except TimeoutError:
        connected = False
    listener.close()
    assert not connected, "the agent connected to a host and port chosen by the caller"
    assert replies[1]["ok"] is False and "--config" in str(replies[1]["error"])


def test_write_and_put_only_where_a_primary_ships(tmp_path: Path) -> None:
    """Finding 3: `write` rewrote the standby's own state (a table forged at version 999999)."""
    agent = _agent(tmp_path)
    meta, media = agent.roots["metadata"], agent.roots["media"]
    forged = b'{"tables": {"local.x.mine": {"version": 999999}}}'
    refused = [
        {"op": "write", "area": "metadata", "rel": "standby-state.json"},
        {"op": "write", "area": "metadata", "rel": "role.json"},
        {"op": "write", "area": "metadata", "rel": "manifests/rejected/x.manifest.json"},
        {"op": "write", "area": "media", "rel": f"manifests/{KEY}.manifest.json"},
    ]
    frames: list[dict[str, object] | bytes] = [{"op": "hello"}]
    for r in refused:
        frames += [raw_frame(_json({**r, "length": len(forged)}), forged)]
    frames += [raw_frame(_json({"op": "put", "area": "metadata", "rel": "standby-state.json", "offset": 0,
                                "length": len(forged), "size": len(forged), "blake2b": "x"}), forged)]
    frames += [{"op": "hello"}]
    replies = exchange(agent, *frames)
    assert [r["ok"] for r in replies] == [True] + [False] * (len(refused) + 1) + [True], replies
    assert sorted(p.name for p in meta.rglob("*")) == [] and list(media.rglob("*")) == []
    # What a primary does write still works.
    ok = exchange(agent, {"op": "hello"},
                  raw_frame(_json({"op": "write", "area": "metadata", "rel": f"manifests/{KEY}.manifest.json",
                                   "length": 2}), b"{}"))
    assert [r["ok"] for r in ok] == [True, True] and (meta / "manifests" / f"{KEY}.manifest.json").exists()


def test_the_root_itself_is_no_file(tmp_path: Path) -> None:
    """Finding 6: rel="." made `put` write `<root>.part` beside the root, outside it."""
    agent = _agent(tmp_path)
    data = b"outside"
    replies = exchange(agent, {"op": "hello"},
                       {"op": "stat", "area": "media", "rel": "."},
                       raw_frame(_json({"op": "put", "area": "media", "rel": ".", "offset": 0,
                                        "length": len(data), "size": len(data), "blake2b": "0"}), data),
                       {"op": "list", "area": "media", "rel": "."})
    assert [r["ok"] for r in replies] == [True, False, False, True], replies
    assert sorted(p.name for p in (tmp_path / "roots").iterdir()) == ["media", "metadata"]


def test_a_failed_rename_leaves_no_temp_file(tmp_path: Path) -> None:
    """Finding 6: a write whose final rename fails (a directory of that name) left its temp file."""
    agent = _agent(tmp_path)
    target = agent.roots["metadata"] / "manifests" / f"{KEY}.manifest.json"
    target.mkdir(parents=True)
    replies = exchange(agent, {"op": "hello"},
                       raw_frame(_json({"op": "write", "area": "metadata",
                                        "rel": f"manifests/{KEY}.manifest.json", "length": 2}), b"{}"))
    assert replies[1]["ok"] is False
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_a_deeply_nested_header_is_answered_not_fatal(tmp_path: Path) -> None:
    """Finding 8: a 100 kB `[[[...` header killed the agent with an uncaught RecursionError."""
    replies = exchange(_agent(tmp_path), raw_frame(b"[" * 100_000), raw_frame(b"{" * 50_000),
                       {"op": "hello"})
    assert [r["ok"] for r in replies] == [False, False, True], replies
    assert "nested too deeply" in str(replies[0]["error"])


def test_a_refused_request_never_crashes_the_agent_on_odd_types(tmp_path: Path) -> None:
    """Arguments of the wrong JSON type get a one-line answer, not a traceback."""
    agent = _agent(tmp_path)
    replies = exchange(agent, {"op": "hello"}, {"op": "fingerprint", "table": 1},
                       {"op": "stat", "area": ["media"], "rel": "x"}, {"op": "df", "area": {}})
    assert all(r["ok"] is False for r in replies[1:]) and replies[0]["ok"] is True


def _json(obj: object) -> bytes:
    import json

    return json.dumps(obj).encode()



def test_prepare_never_re_pairs_a_paired_standby(tmp_path: Path) -> None:
    """Found by the hostile-peer fuzz: any caller's `prepare` rewrote the standby's pair record."""
    agent = _agent(tmp_path)
    ours = {"primary_cluster_id": "p-1", "standby_cluster_id": "s-1"}
    theirs = {"primary_cluster_id": "evil", "standby_cluster_id": "s-1"}
    replies = exchange(agent, {"op": "hello"}, {"op": "prepare", **ours}, {"op": "prepare", **ours},
                       {"op": "prepare", **theirs})
    assert [r["ok"] for r in replies] == [True, True, True, False], replies
    assert "records another pair" in str(replies[3]["error"])
    assert json.loads((agent.roots["metadata"] / "pair.json").read_text()) == ours


def test_tableread_serves_table_files_only_from_the_warehouse(tmp_path: Path) -> None:
    """Continuous verification fetches a damaged file from the primary's agent: a range of one
    file under --warehouse-root, read-only, never outside it nor through a symlink."""
    import io
    import os

    from drsync.transport.protocol import TABLE_READ_CHUNK, read_header, read_payload, write_frame

    media, meta, wh = (tmp_path / "roots" / n for n in ("media", "metadata", "warehouse"))
    for d in (media, meta, wh / "db" / "s" / "t"):
        d.mkdir(parents=True)
    (wh / "db" / "s" / "t" / "part-0.parquet").write_bytes(b"0123456789")
    (tmp_path / "secret").write_text("secret")
    os.symlink(tmp_path / "secret", wh / "db" / "s" / "t" / "link.parquet")
    os.symlink(wh / "db" / "s" / "t", wh / "db" / "s" / "u")
    agent = site_agent(media, meta, warehouse_root=wh)

    def ask(*reqs: dict[str, object]) -> list[tuple[dict[str, object], bytes]]:
        inp, out = io.BytesIO(), io.BytesIO()
        for req in ({"op": "hello"}, *reqs):
            write_frame(inp, req)
        inp.seek(0)
        agent.serve(inp, out)
        out.seek(0)
        got = []
        while (h := read_header(out)) is not None:
            got.append((h, read_payload(out, h)))
        return got[1:]

    def read(table: str, rel: str, offset: int = 0, length: int = 4) -> dict[str, object]:
        return {"op": "tableread", "table": table, "rel": rel, "offset": offset, "length": length}

    (whole, tail, absent), = [ask(read("db.s.t", "part-0.parquet"), read("db.s.t", "part-0.parquet", 8),
                                  read("db.s.t", "gone.parquet"))]
    assert whole == ({"ok": True, "found": True, "size": 10, "length": 4}, b"0123")
    assert tail[1] == b"89" and absent[0] == {"ok": True, "found": False}
    refused = ask(read("db.s.t", "../../../secret"), read("db.s.t", "/etc/passwd"),
                  read("db.s.t", "link.parquet"), read("db.s.u", "part-0.parquet"),
                  read("db.s.t", "part-0.parquet", 0, TABLE_READ_CHUNK + 1), read("..", "x"))
    assert [r[0]["ok"] for r in refused] == [False] * 6, refused
    assert not any(b"secret" in payload for _, payload in refused)
    no_warehouse = exchange(site_agent(media, meta), {"op": "hello"}, read("db.s.t", "part-0.parquet"))
    assert no_warehouse[1]["ok"] is False and "--warehouse-root" in str(no_warehouse[1]["error"])
