"""Windowed sending (drsync/transport/window.py) against a real agent (transport/agent.py and its
completions thread) over a socket pair, in process: several puts in flight per link, resume
from the listed prefix, files already there skipped by hash, a corrupted prefix sent again."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drsync.errors import TransportError
from drsync.sets.digest import data_hash
from drsync.standby.agentops import SITE_OPERATIONS
from drsync.transport import window
from drsync.transport.agent import Agent
from drsync.transport.base import Outgoing
from drsync.transport.protocol import read_header, read_payload, write_frame
from drsync.transport.window import WINDOW, WindowedSender

KEY = "20260101_000000"
MIB = 1 << 20


class SocketLink:
    """The client end of a link, as ssh.py's Link: ordered requests and replies on one stream.
    Counts the puts written before each reply is read (what is in flight)."""

    def __init__(self, sock: socket.socket) -> None:
        self.w = sock.makefile("wb")
        self.r = sock.makefile("rb")
        self.unanswered = 0
        self.most_in_flight = 0

    def request(self, header: dict[str, Any], payload: bytes = b"") -> dict[str, Any]:
        write_frame(self.w, header, payload)
        self.unanswered += 1
        return self.reply()

    def reply(self) -> dict[str, Any]:
        self.most_in_flight = max(self.most_in_flight, self.unanswered)
        header = read_header(self.r)
        assert header is not None, "the agent closed the stream"
        read_payload(self.r, header)
        self.unanswered -= 1
        if not header.get("ok"):
            raise TransportError(str(header.get("error")))
        return header


class Pipes:
    """A real agent serving one socket pair in a thread; `links()` hands out its client end."""

    def __init__(self, root: Path) -> None:
        self.media = root / "standby-media"
        self.media.mkdir()
        (root / "standby-meta").mkdir()
        self.agent = Agent(self.media, root / "standby-meta", operations=SITE_OPERATIONS)
        self.mine, theirs = socket.socketpair()
        self.thread = threading.Thread(target=self.agent.serve,
                                       args=(theirs.makefile("rb"), theirs.makefile("wb")), daemon=True)
        self.thread.start()
        self.link = SocketLink(self.mine)
        original = self.link.w.write

        def counting_write(data: Any) -> Any:  # a put header: one more request in flight
            if isinstance(data, bytes) and b'"op":"put"' in data[:200]:
                self.link.unanswered += 1
            return original(data)

        self.link.w.write = counting_write  # type: ignore[method-assign]

    @contextlib.contextmanager
    def links(self) -> Iterator[SocketLink]:
        yield self.link

    def close(self) -> None:
        write_frame(self.link.w, {"op": "bye"})
        self.thread.join(timeout=10)
        self.mine.close()


class NoLimit:
    def take(self, n: int) -> None:
        pass


@pytest.fixture
def pipes(tmp_path: Path) -> Iterator[Pipes]:
    p = Pipes(tmp_path)
    yield p
    p.close()


def _files(tmp_path: Path, sizes: list[int]) -> list[Outgoing]:
    out = []
    for i, size in enumerate(sizes):
        data = os.urandom(size)
        local = tmp_path / f"src{i}.raw"
        local.write_bytes(data)
        out.append(Outgoing(local, f"{KEY}/{KEY}_{i:04d}.raw", size, data_hash(data)))
    return out


def _send(pipes: Pipes, files: list[Outgoing]) -> tuple[int, list[str]]:
    done: list[str] = []
    sender = WindowedSender(pipes.links, NoLimit(), 0, (OSError, EOFError), "media", files, None,
                            lambda f: done.append(f.rel))
    return sender.run(1), done


def test_several_files_in_flight_and_all_arrive(pipes: Pipes, tmp_path: Path) -> None:
    files = _files(tmp_path, [MIB + 7] * (WINDOW + 4))
    sent, done = _send(pipes, files)
    assert sent == sum(f.size for f in files)
    assert sorted(done) == sorted(f.rel for f in files)
    for f in files:
        assert (pipes.media / f.rel).read_bytes() == f.local.read_bytes()
    # The sender wrote further puts before reading replies, never more than the window.
    assert 2 <= pipes.link.most_in_flight <= WINDOW + 1, pipes.link.most_in_flight
    assert not list(pipes.media.rglob("*.part"))


def test_a_send_without_failures_never_waits_to_retry(
    pipes: Pipes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry back-off is for a lost link only: a link that emptied the queue returns at
    once (a sleep after every successful session cost each round 0.5 s)."""
    slept: list[float] = []
    monkeypatch.setattr(window.time, "sleep", slept.append)
    sent, done = _send(pipes, _files(tmp_path, [1000, MIB + 1]))
    assert len(done) == 2 and sent == 1000 + MIB + 1
    assert slept == []


def test_resumes_from_the_listed_prefix_and_skips_complete_files(pipes: Pipes, tmp_path: Path) -> None:
    files = _files(tmp_path, [2 * MIB, 3 * MIB + 1, MIB])
    (pipes.media / KEY).mkdir()
    prefix = 1_234_567
    part = pipes.media / f"{files[1].rel}.part"
    part.write_bytes(files[1].local.read_bytes()[:prefix])  # a cut transfer's received bytes
    (pipes.media / files[2].rel).write_bytes(files[2].local.read_bytes())  # already complete
    sent, done = _send(pipes, files)
    assert sent == files[0].size + files[1].size - prefix  # nothing sent twice
    assert sorted(done) == sorted(f.rel for f in files)
    for f in files:
        assert (pipes.media / f.rel).read_bytes() == f.local.read_bytes()


def test_a_corrupted_prefix_is_detected_and_the_file_sent_again(pipes: Pipes, tmp_path: Path) -> None:
    files = _files(tmp_path, [2 * MIB, MIB, MIB])
    (pipes.media / KEY).mkdir()
    bad = bytearray(files[0].local.read_bytes()[:MIB])
    bad[1000] ^= 0x40  # rot in what arrived before the cut
    (pipes.media / f"{files[0].rel}.part").write_bytes(bytes(bad))
    sent, done = _send(pipes, files)
    assert sent == files[0].size - MIB + files[0].size + files[1].size + files[2].size
    for f in files:
        assert (pipes.media / f.rel).read_bytes() == f.local.read_bytes()
    assert sorted(done) == sorted(f.rel for f in files)


def test_a_folder_too_large_to_list_is_resumed_file_by_file(pipes: Pipes, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Above LIST_MAX files a `list` reply could outgrow the 1 MiB header limit: `stat` each."""
    monkeypatch.setattr(window, "LIST_MAX", 2)
    files = _files(tmp_path, [2 * MIB, MIB, MIB])
    (pipes.media / KEY).mkdir()
    prefix = 777_777
    (pipes.media / f"{files[0].rel}.part").write_bytes(files[0].local.read_bytes()[:prefix])
    (pipes.media / files[2].rel).write_bytes(files[2].local.read_bytes())
    sent, done = _send(pipes, files)
    assert sent == files[0].size - prefix + files[1].size
    assert sorted(done) == sorted(f.rel for f in files)
    for f in files:
        assert (pipes.media / f.rel).read_bytes() == f.local.read_bytes()
