"""A fault-injecting TCP proxy on 127.0.0.1 (this kernel has no tc netem).

``FaultProxy(target_host, target_port, ...)`` listens on a free port of 127.0.0.1 (``.port``) and
forwards each connection to the target (loopback only). Faults, all changeable while running:

* ``latency_s``: one-way delay added to every chunk, in each direction (a round trip costs twice
  that). Chunks are delayed, not serialised: throughput is not cut by latency, and order is kept.
  End of stream (FIN) is delayed like data.
* ``rate_bytes_per_s``: a token bucket per direction and connection (burst: 1/50 s of the rate,
  at least 4 KiB).
* ``cut_after_bytes``: a connection is cut as soon as exactly that many bytes went client→server
  through it (counted per connection; 0 cuts each connection when it opens). Lowering it below
  what a live connection already sent cuts that connection at once.
* ``cut_probability_per_mb``: the probability that a connection is cut within any MiB (2**20
  bytes) it carries, counting both directions: cut points are drawn per connection from a seeded
  RNG (``seed``), so a run with the same seed and traffic cuts at the same byte.
* ``cut_all()``: cut every live connection now.

A cut aborts both sides of the connection (SO_LINGER 0: the peers get a RST). A reset or error on
one side is passed on as a reset to the other (not counted in ``cuts``); a clean EOF is passed on as
a FIN (after the data before it), so half-closed streams work.

Counters: ``bytes_up`` (client→server, forwarded), ``bytes_down``, ``connections`` (accepted),
``cuts`` (connections cut by a fault or ``cut_all``), ``active`` (live connections).

One daemon thread runs a selector loop over non-blocking sockets: no busy waiting (it sleeps
until a socket is ready or the next chunk is due), and ``stop()`` closes everything.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import math
import random
import selectors
import socket
import struct
import threading
import time
from typing import Any

CHUNK = 65536
MAX_QUEUED = 1 << 20  # per direction: stop reading the source beyond this (backpressure)
MIB = 1 << 20


class _Pipe:
    """One direction of a connection: chunks read from src, waiting to be written to dst."""

    __slots__ = ("dst", "eof", "queue", "queued", "shut", "src", "tokens", "tokens_at", "up", "want_write")

    def __init__(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        self.src, self.dst, self.up = src, dst, up
        self.queue: collections.deque[list[Any]] = collections.deque()  # [due, memoryview | None=EOF]
        self.queued = 0
        self.eof = False  # EOF read from src
        self.shut = False  # EOF passed on to dst
        self.want_write = False  # dst's send buffer was full
        self.tokens: float | None = None
        self.tokens_at = 0.0


class _Conn:
    __slots__ = ("base_bytes", "base_hazard", "client", "down", "draw", "lam", "masks", "total", "up",
                 "up_bytes", "upstream")

    def __init__(self, client: socket.socket, upstream: socket.socket, draw: float) -> None:
        self.client, self.upstream = client, upstream
        self.up = _Pipe(client, upstream, True)
        self.down = _Pipe(upstream, client, False)
        self.up_bytes = 0
        self.total = 0  # bytes forwarded, both directions
        # Random cuts: the connection is cut when its accumulated hazard (bytes x lam / MiB, lam
        # being -ln(1 - p) for p = cut_probability_per_mb) reaches draw ~ Exp(1). Accumulated in
        # integers of bytes between changes of lam, so the cut byte does not depend on chunking.
        self.draw = draw
        self.lam = 0.0
        self.base_hazard = 0.0
        self.base_bytes = 0
        self.masks: dict[socket.socket, int] = {client: 0, upstream: 0}


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, *, latency_s: float = 0.0,
                 rate_bytes_per_s: int | None = None, cut_after_bytes: int | None = None,
                 cut_probability_per_mb: float = 0.0, seed: int = 0) -> None:
        addr = socket.gethostbyname(target_host)
        if not ipaddress.ip_address(addr).is_loopback:
            raise ValueError(f"FaultProxy forwards to loopback only, not {target_host} ({addr})")
        self.target = (addr, int(target_port))
        self._latency_s = 0.0
        self._rate: int | None = None
        self._cut_after: int | None = None
        self._p_per_mb = 0.0
        self.latency_s = latency_s
        self.rate_bytes_per_s = rate_bytes_per_s
        self.cut_after_bytes = cut_after_bytes
        self.cut_probability_per_mb = cut_probability_per_mb
        self._rng = random.Random(seed)
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections = 0
        self.cuts = 0
        self.error: BaseException | None = None  # set if the proxy loop crashed

        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.setblocking(False)
        self.host = "127.0.0.1"
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._conns: dict[int, _Conn] = {}  # by id
        self._requests: collections.deque[threading.Event] = collections.deque()
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None

    # -- settings (changeable while running; the loop is woken to apply them) -----------------

    @property
    def latency_s(self) -> float:
        return self._latency_s

    @latency_s.setter
    def latency_s(self, value: float) -> None:
        if value < 0:
            raise ValueError("latency_s must be >= 0")
        self._latency_s = float(value)
        self._wake()

    @property
    def rate_bytes_per_s(self) -> int | None:
        return self._rate

    @rate_bytes_per_s.setter
    def rate_bytes_per_s(self, value: int | None) -> None:
        if value is not None and value <= 0:
            raise ValueError("rate_bytes_per_s must be > 0 or None")
        self._rate = value
        self._wake()

    @property
    def cut_after_bytes(self) -> int | None:
        return self._cut_after

    @cut_after_bytes.setter
    def cut_after_bytes(self, value: int | None) -> None:
        if value is not None and value < 0:
            raise ValueError("cut_after_bytes must be >= 0 or None")
        self._cut_after = value
        self._wake()

    @property
    def cut_probability_per_mb(self) -> float:
        return self._p_per_mb

    @cut_probability_per_mb.setter
    def cut_probability_per_mb(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError("cut_probability_per_mb must be within [0, 1]")
        self._p_per_mb = float(value)
        self._wake()

    @property
    def active(self) -> int:
        return len(self._conns)

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        if self._closed or self._thread is not None:
            raise RuntimeError("FaultProxy.start: already started or stopped")
        self._sel.register(self._listener, selectors.EVENT_READ, "listener")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name=f"faultproxy:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Abort every connection, close the listener, end the thread. Idempotent."""
        if self._closed:
            return
        self._stopping = True
        if self._thread is not None:
            self._wake()
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                raise RuntimeError("FaultProxy thread did not stop")
        else:
            self._close_all()
        self._closed = True
        for s in (self._wake_r, self._wake_w):
            s.close()
        if self.error is not None:
            raise RuntimeError("FaultProxy loop failed") from self.error

    def cut_all(self) -> None:
        """Cut every live connection now (RST both ways); returns once done."""
        if self._thread is None or not self._thread.is_alive():
            return
        done = threading.Event()
        self._requests.append(done)
        self._wake()
        done.wait(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop --------------------------------------------------------------------------------

    def _wake(self) -> None:
        w = getattr(self, "_wake_w", None)
        if w is None or self._closed:
            return
        with contextlib.suppress(OSError):  # BlockingIOError: a wake-up is pending already
            w.send(b"x")

    def _run(self) -> None:
        try:
            while not self._stopping:
                while self._requests:
                    done = self._requests.popleft()
                    for conn in list(self._conns.values()):
                        self._cut(conn)
                    done.set()
                now = time.monotonic()
                wake_at = math.inf
                for conn in list(self._conns.values()):
                    wake_at = min(wake_at, self._service(conn, now))
                for conn in list(self._conns.values()):
                    self._update_interest(conn)
                timeout = None if wake_at == math.inf else max(0.0, wake_at - time.monotonic())
                for key, mask in self._sel.select(timeout):
                    if key.data == "listener":
                        self._accept()
                    elif key.data == "wake":
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except BlockingIOError:
                            pass
                    else:
                        conn, sock = key.data
                        if id(conn) in self._conns:
                            self._on_ready(conn, sock, mask)
        except BaseException as e:
            self.error = e
        finally:
            self._close_all()
            while self._requests:
                self._requests.popleft().set()

    def _close_all(self) -> None:
        for conn in list(self._conns.values()):
            self._abort(conn)
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(self._listener)
        self._listener.close()
        self._sel.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.connections += 1
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _abort_socket(client)
                continue
            for s in (client, upstream):
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(client, upstream, self._rng.expovariate(1.0))
            self._conns[id(conn)] = conn
            if self._cut_after == 0:
                self._cut(conn)

    def _on_ready(self, conn: _Conn, sock: socket.socket, mask: int) -> None:
        reader = conn.up if sock is conn.client else conn.down  # the pipe reading from sock
        writer = conn.down if sock is conn.client else conn.up  # the pipe writing to sock
        if mask & selectors.EVENT_WRITE:
            writer.want_write = False
        if mask & selectors.EVENT_READ and not reader.eof:
            try:
                data = sock.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._abort(conn)
                return
            due = time.monotonic() + self._latency_s
            if reader.queue and reader.queue[-1][0] > due:
                due = reader.queue[-1][0]  # latency lowered: never overtake what is queued
            if data:
                reader.queue.append([due, memoryview(data)])
                reader.queued += len(data)
            else:
                reader.eof = True
                reader.queue.append([due, None])

    def _service(self, conn: _Conn, now: float) -> float:
        """Write what is due in both directions; return when to look again (inf: on events)."""
        if self._cut_after is not None and conn.up_bytes >= self._cut_after:
            self._cut(conn)
            return math.inf
        wake_at = math.inf
        for pipe in (conn.up, conn.down):
            wake_at = min(wake_at, self._flush(conn, pipe, now))
            if id(conn) not in self._conns:
                return math.inf
        return wake_at

    def _flush(self, conn: _Conn, pipe: _Pipe, now: float) -> float:
        while pipe.queue and not pipe.want_write:
            due, data = pipe.queue[0]
            if due > now:
                return float(due)
            if data is None:  # EOF: pass it on as a FIN
                pipe.queue.popleft()
                pipe.shut = True
                with contextlib.suppress(OSError):
                    pipe.dst.shutdown(socket.SHUT_WR)
                if conn.up.shut and conn.down.shut:
                    self._close(conn)
                return math.inf
            n = len(data)
            limit = math.inf  # bytes allowed before a cut is due
            if pipe.up and self._cut_after is not None:
                limit = self._cut_after - conn.up_bytes
            lam = -math.log1p(-self._p_per_mb) if self._p_per_mb < 1.0 else math.inf
            if lam != conn.lam:
                if conn.lam > 0:
                    conn.base_hazard += (conn.total - conn.base_bytes) * conn.lam / MIB
                conn.base_bytes, conn.lam = conn.total, lam
            if lam > 0:
                left = max(0.0, conn.draw - conn.base_hazard)
                at = 0 if lam == math.inf else math.ceil(left * MIB / lam)
                limit = min(limit, at - (conn.total - conn.base_bytes))
            if limit <= 0:
                self._cut(conn)
                return math.inf
            n = int(min(n, limit))
            rate = self._rate
            if rate:
                cap = max(rate / 50.0, 4096.0)
                if pipe.tokens is None:
                    pipe.tokens, pipe.tokens_at = cap, now
                pipe.tokens = min(cap, pipe.tokens + (now - pipe.tokens_at) * rate)
                pipe.tokens_at = now
                need = min(n, cap)
                if pipe.tokens < need:
                    return now + (need - pipe.tokens) / rate
                n = min(n, int(pipe.tokens))
            else:
                pipe.tokens = None
            try:
                sent = pipe.dst.send(data[:n])
            except (BlockingIOError, InterruptedError):
                pipe.want_write = True
                return math.inf
            except OSError:
                self._abort(conn)
                return math.inf
            if pipe.tokens is not None:
                pipe.tokens -= sent
            if pipe.up:
                self.bytes_up += sent
                conn.up_bytes += sent
            else:
                self.bytes_down += sent
            conn.total += sent
            pipe.queued -= sent
            if sent < len(data):
                pipe.queue[0][1] = data[sent:]
            else:
                pipe.queue.popleft()
            if sent == limit:
                self._cut(conn)
                return math.inf
            if sent < n:
                pipe.want_write = True
                return math.inf
        return math.inf

    def _update_interest(self, conn: _Conn) -> None:
        for sock, reader, writer in ((conn.client, conn.up, conn.down), (conn.upstream, conn.down, conn.up)):
            mask = 0
            if not reader.eof and reader.queued < MAX_QUEUED:
                mask |= selectors.EVENT_READ
            if writer.want_write:
                mask |= selectors.EVENT_WRITE
            old = conn.masks[sock]
            if mask == old:
                continue
            if old == 0:
                self._sel.register(sock, mask, (conn, sock))
            elif mask == 0:
                self._sel.unregister(sock)
            else:
                self._sel.modify(sock, mask, (conn, sock))
            conn.masks[sock] = mask

    def _cut(self, conn: _Conn) -> None:
        if id(conn) in self._conns:
            self.cuts += 1
        self._abort(conn)

    def _abort(self, conn: _Conn) -> None:
        self._drop(conn, abort=True)

    def _close(self, conn: _Conn) -> None:
        self._drop(conn, abort=False)

    def _drop(self, conn: _Conn, *, abort: bool) -> None:
        if self._conns.pop(id(conn), None) is None:
            return
        for sock in (conn.client, conn.upstream):
            if conn.masks[sock]:
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(sock)
                conn.masks[sock] = 0
            if abort:
                _abort_socket(sock)
            else:
                sock.close()


def _abort_socket(sock: socket.socket) -> None:
    """Close with a RST (SO_LINGER on, timeout 0), not a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
