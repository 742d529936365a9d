"""The agent's second thread: finishing received puts (fsync, verify, rename, reply) while the
main thread already receives the next request.

Why: with windowed acknowledgements (ssh.py `SshTransport.send_files`) the primary streams the
next file while the previous one is flushed to disk here. If the agent fsynced in line, the
bytes of the next file would pile up in the SSH window and the link would stall for the length
of every fsync; the sender would not wait for the reply, but the wire still would.

Replies stay in request order: one worker takes the finishes in the order they were queued,
and the main thread waits for every queued finish (`settle`) before it writes a reply of its
own. So a `stat` after a `put` of the same file sees it renamed, and a client that does not
pipeline sees exactly the old protocol.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

# A finish: does the slow part of a request and returns its reply frame (ok or error).
Finish = Callable[[], dict[str, Any]]
ReplyWriter = Callable[[dict[str, Any]], None]


class Completions:
    def __init__(self, write_reply: ReplyWriter) -> None:
        self._write = write_reply
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent-finish")
        self._last: Future[None] | None = None
        self._lock = threading.Lock()
        self._pending: set[str] = set()  # keys (files) whose finish is queued or running
        self.broken: BaseException | None = None  # the reply stream failed (peer gone)

    def defer(self, key: str, finish: Finish) -> None:
        """Queue `finish`; its reply is written when it has run, after every earlier one."""
        with self._lock:
            self._pending.add(key)
        self._last = self._pool.submit(self._run, key, finish)

    def _run(self, key: str, finish: Finish) -> None:
        try:
            reply = finish()
        finally:
            with self._lock:
                self._pending.discard(key)
        if self.broken is not None:
            return
        try:
            self._write(reply)
        except (OSError, ValueError) as e:  # the primary went away: the main thread sees EOF too
            self.broken = e

    def pending(self, key: str) -> bool:
        with self._lock:
            return key in self._pending

    def settle(self) -> None:
        """Wait until every queued finish has run and written its reply."""
        last, self._last = self._last, None
        if last is not None:
            last.result()

    def close(self) -> None:
        self.settle()
        self._pool.shutdown(wait=True)
