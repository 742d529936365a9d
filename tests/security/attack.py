"""What the security tests share: tables written by the real deltalake writer, the agent spoken
to on in-memory streams, and the standby's inbox edited as a hostile primary would."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import write_deltalake

from drsync.transport.agent import Agent
from drsync.transport.protocol import read_header, write_frame
from tests.helpers import Sites


def write_table(warehouse: Path, name: str, values: list[int], mode: str = "append") -> Path:
    path = warehouse.joinpath(*name.split("."))
    write_deltalake(str(path), pa.table({"a": values}), mode=mode)  # type: ignore[arg-type]
    return path


def exchange(agent: Agent, *requests: dict[str, Any] | bytes) -> list[dict[str, Any]]:
    """Serve `requests` (headers, or raw bytes sent as they are) and return the replies."""
    inp, out = io.BytesIO(), io.BytesIO()
    for req in requests:
        if isinstance(req, bytes):
            inp.write(req)
        else:
            write_frame(inp, req)
    inp.seek(0)
    agent.serve(inp, out)
    out.seek(0)
    replies = []
    while (h := read_header(out)) is not None:
        replies.append(h)
    return replies


def raw_frame(header: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(header)) + header + payload


def newest_inbox_manifest(sites: Sites) -> Path:
    return sorted((sites.standby_meta / "manifests").glob("*.manifest.json"))[-1]


def edit_manifest(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads(path.read_bytes())
    change(doc)
    path.write_text(json.dumps(doc))


def snapshot(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[int, int, bytes]]:
    """Every path under `root` (not under `skip`): mode, size and content of files; symlinks as
    their target. What a test compares to prove nothing there was written, chmod'ed or removed."""
    out: dict[str, tuple[int, int, bytes]] = {}
    for p in sorted(root.rglob("*")):
        if any(p == s or s in p.parents for s in skip):
            continue
        st = p.lstat()
        if p.is_symlink():
            out[str(p)] = (st.st_mode, 0, str(p.readlink()).encode())
        elif p.is_file():
            out[str(p)] = (st.st_mode, st.st_size, p.read_bytes())
        else:
            out[str(p)] = (st.st_mode, 0, b"")
    return out
