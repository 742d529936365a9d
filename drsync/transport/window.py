"""Windowed sending over SSH links: several files in flight per link, acknowledged later.

The agent answers every request in order (agent.py, completions.py). So a link need not wait
for a put's reply (which comes after the agent's fsync and rename) before it sends the next
file: it keeps up to WINDOW puts unacknowledged and reads the oldest reply only when the
window is full or nothing is left to send. The sender never waits on the agent's fsync, and the
agent fsyncs file k on its second thread while file k+1 arrives.

Resume: at the start of each link session one `list` of the set's directory gives the sizes of
what the standby already holds (`name` complete, `name.part` a received prefix); a put starts at
the prefix (the agent hashes the prefix first, then what arrives). A file whose final name is
there at its full size is checked by hash (`stat` with the digest) before it is skipped. Files of
a link that failed are put back with `check` set: their next put is preceded by a `stat`, as
the listing no longer describes them.

Why WINDOW = 8 files: it has to cover the agent's fsync and the reply's round trip, during
which one more file crosses the link; for 1 MiB raw files (the smallest that travel as they
are) a few files do that, for large files 2 would. A larger window costs nothing on the sender
(files are read from disk as they are sent, never buffered) and on the agent only a queued
path per file; a cut link re-checks at most WINDOW files with one `stat` each.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from drsync.errors import AuthError, HostKeyError, IntegrityError, TransportError
from drsync.faults import crash_point
from drsync.fsutil import CHUNK
from drsync.transport.base import Area, Outgoing, SendProgress
from drsync.transport.protocol import write_frame

log = logging.getLogger("drsync.ssh")
WINDOW = 8  # puts in flight per link (module doc)
# A `list` reply is one JSON header (protocol.MAX_HEADER, 1 MiB): ~40 bytes per name, and a
# folder holds at most a file and its .part per file sent. Folders with more files to send
# are resumed with a `stat` per file instead (correct, but each one waits for the window).
LIST_MAX = 4000


class LinkLike(Protocol):
    w: Any

    def request(self, header: dict[str, Any], payload: bytes = b"") -> dict[str, Any]: ...

    def reply(self) -> dict[str, Any]: ...


class Limiter(Protocol):
    def take(self, n: int) -> None: ...


@dataclass
class _Item:
    out: Outgoing
    attempts: int = 0  # failed link sessions while this file was being sent or awaited
    corrupt: int = 0  # puts the agent found corrupted (hash mismatch on arrival)
    check: bool = False  # stat before the next put (it was in flight on a link that failed)
    restart: bool = False  # put from 0 (the agent removed a corrupted .part)


class WindowedSender:
    """Sends `files` over up to `workers` links of a pool (`links()`), resuming and retrying."""

    def __init__(self, links: Callable[[], AbstractContextManager[LinkLike]], limiter: Limiter,
                 retries: int, transient: tuple[type[BaseException], ...], area: Area,
                 files: Sequence[Outgoing], progress: SendProgress | None,
                 done: Callable[[Outgoing], None] | None) -> None:
        self.links, self.limiter, self.retries, self.transient = links, limiter, retries, transient
        self.area, self.progress, self.done = area, progress, done
        self._retryable: tuple[type[BaseException], ...] = (TransportError, *transient)
        # Largest first: the links finish together instead of one sending the last big file alone.
        self._queue: deque[_Item] = deque(_Item(f) for f in sorted(files, key=lambda f: -f.size))
        per_folder = Counter(f.rel.rpartition("/")[0] for f in files)
        self._unlisted = {folder for folder, n in per_folder.items() if n > LIST_MAX}
        self._lock = threading.Lock()
        self._stop = False
        self._sent = 0
        self._done, self._total = 0, len(self._queue)

    def run(self, workers: int) -> int:
        n = max(1, min(workers, len(self._queue)))
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="ship") as pool:
            futures = [pool.submit(self._worker) for _ in range(n)]
            errors = [e for f in futures if (e := f.exception()) is not None]
        if errors:
            raise errors[0]
        if self._done != self._total:  # every file confirmed by the agent, or none is
            raise TransportError(f"ssh: {self._total - self._done} of {self._total} files were not "
                                 "confirmed by the standby")
        return self._sent

    # -- the work queue, shared by the links
    def _take(self) -> _Item | None:
        with self._lock:
            return None if self._stop or not self._queue else self._queue.popleft()

    def _put_back(self, items: list[_Item]) -> None:
        """Requeue the files of a failed session, first, each to be checked before its put."""
        for it in items:
            it.attempts += 1
            it.check = True
        with self._lock:
            self._queue.extendleft(reversed(items))

    def _worker(self) -> None:
        delay, lost_links = 0.5, 0  # lost_links: failures before any file was taken
        try:
            while True:
                with self._lock:
                    if self._stop or not self._queue:
                        return
                failed: list[_Item] = []
                try:
                    with self.links() as link:
                        self._session(link, failed)
                except (HostKeyError, AuthError):
                    raise
                except self._retryable as e:
                    lost_links += not failed
                    tries = max((it.attempts for it in failed), default=lost_links)
                    what = failed[0].out.rel if failed else "files"
                    why = e.message if isinstance(e, TransportError) else f"connection lost ({e})"
                    if isinstance(e, TransportError) and ("disk full" in why or tries > self.retries):
                        raise
                    if tries > self.retries:
                        raise TransportError(f"ssh: sending {what} failed after {tries} attempts: {e}",
                                             hint="check the network and the standby host") from None
                    log.warning("sending %s: %s; retrying (%d of %d)", what, why, tries, self.retries)
                    # Only after a failure: a session that emptied the queue loops back to
                    # return at once (a sleep here cost every round 0.5 s).
                    time.sleep(delay)
                    delay = min(delay * 2, 10)
        except BaseException:
            with self._lock:
                self._stop = True  # the other links finish what they have in flight, then stop
            raise

    # -- one link session
    def _session(self, link: LinkLike, failed: list[_Item]) -> None:
        """Send from the queue over `link` until it is empty; on failure the files this session
        held go back to the queue and into `failed`."""
        inflight: deque[_Item] = deque()
        listings: dict[str, dict[str, int]] = {}
        item: _Item | None = None
        try:
            while True:
                item = self._take() if len(inflight) < WINDOW else None
                if item is None:
                    if not inflight:
                        return
                    self._settle(link, inflight)
                    continue
                offset = self._offset(link, inflight, listings, item)
                if offset is not None:
                    self._put(link, item.out, offset)
                    inflight.append(item)
                item = None
        except BaseException:
            failed += ([item] if item is not None else []) + list(inflight)
            self._put_back(failed)
            raise

    def _settle(self, link: LinkLike, inflight: deque[_Item]) -> None:
        """Read the oldest put's reply; the file is done, or sent again if it arrived corrupt."""
        reply = link.reply()
        item = inflight[0]  # popped once settled: on an error the session puts it back
        if reply.get("complete"):
            inflight.popleft()
            self._finished(item.out)
            return
        if not reply.get("corrupt"):
            raise TransportError(f"{item.out.rel}: the standby holds {reply.get('have')} of "
                                 f"{item.out.size} bytes after a complete put")
        inflight.popleft()
        item.corrupt += 1
        log.warning("%s arrived corrupted on the standby; sending it again", item.out.rel)
        if item.corrupt > 1:
            raise IntegrityError(f"{item.out.rel}: hash mismatch on the standby twice in a row")
        item.restart = True  # the agent removed the .part
        with self._lock:
            self._queue.appendleft(item)

    def _finished(self, out: Outgoing) -> None:
        with self._lock:
            self._done += 1
        if self.done is not None:
            self.done(out)

    def _request(self, link: LinkLike, inflight: deque[_Item], header: dict[str, Any]) -> dict[str, Any]:
        """A request whose answer is needed now: the replies in flight come first."""
        while inflight:
            self._settle(link, inflight)
        return link.request(header)

    def _offset(self, link: LinkLike, inflight: deque[_Item], listings: dict[str, dict[str, int]],
                item: _Item) -> int | None:
        """Where the put of `item` starts (the prefix the standby holds), None if it is complete."""
        out = item.out
        folder, _, name = out.rel.rpartition("/")
        if item.restart and not item.check:
            item.restart = False
            return 0
        if not item.check and folder not in self._unlisted:
            if folder not in listings:
                files = self._request(link, inflight, {"op": "list", "area": self.area,
                                                       "rel": folder or "."}).get("files", {})
                listings[folder] = {str(k): int(v) for k, v in files.items()}
            held = listings[folder]
            if held.get(name) != out.size:  # not there whole: resume from the listed prefix
                return _start(held.get(name + ".part"), out.size)
        # A file of a failed session, one there at its full size, or of a folder too large to
        # list: ask (with its hash).
        item.check = False
        st = self._request(link, inflight, {"op": "stat", "area": self.area, "rel": out.rel,
                                            "hash": out.digest})
        if st.get("size") == out.size and st.get("blake2b") == out.digest:
            self._finished(out)
            return None
        return _start(st.get("part"), out.size)

    def _put(self, link: LinkLike, out: Outgoing, offset: int) -> None:
        """Write one put (header and payload from `out.local` at `offset`); no reply read."""
        length = out.size - offset
        write_frame(link.w, {"op": "put", "area": self.area, "rel": out.rel, "offset": offset,
                             "length": length, "size": out.size, "blake2b": out.digest})
        with open(out.local, "rb") as f:
            f.seek(offset)
            remaining = length
            while remaining:
                chunk = f.read(min(CHUNK, remaining))
                if not chunk:
                    raise IntegrityError(f"{out.local} shrank while being sent")
                self.limiter.take(len(chunk))
                link.w.write(chunk)
                remaining -= len(chunk)
                with self._lock:
                    self._sent += len(chunk)
                crash_point("ship.chunk")  # the primary dies inside a put
                if self.progress:
                    self.progress(len(chunk))
        link.w.flush()


def _start(part: object, size: int) -> int:
    """The offset to resume at: the received prefix, unless it is longer than the file."""
    return part if isinstance(part, int) and 0 <= part <= size else 0
