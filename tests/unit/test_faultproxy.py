"""FaultProxy in front of a tiny echo server on 127.0.0.1 (no sshd)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.faultproxy import MIB, FaultProxy


class EchoServer:
    """Echoes what it receives; on EOF it closes. Counts the bytes each connection received."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received: list[int] = []
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(conn)
                self.received.append(0)
                index = len(self.received) - 1
            threading.Thread(target=self._echo, args=(conn, index), daemon=True).start()

    def _echo(self, conn: socket.socket, index: int) -> None:
        with conn:
            try:
                while data := conn.recv(65536):
                    with self.lock:
                        self.received[index] += len(data)
                    conn.sendall(data)
            except OSError:
                pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with self.lock:
            for c in self.conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    p = FaultProxy("127.0.0.1", echo.port).start()
    yield p
    p.stop()


def connect(proxy: FaultProxy) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exactly(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        data = s.recv(min(65536, n - len(buf)))
        if not data:
            raise EOFError(f"EOF after {len(buf)} of {n} bytes")
        buf += data
    return bytes(buf)


def is_broken(s: socket.socket, timeout: float = 5.0) -> bool:
    """True if the connection ends (reset or EOF) within timeout."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


def wait_until(cond: Callable[[], object], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return False


def pump(s: socket.socket, data: bytes) -> tuple[bytes, BaseException | None]:
    """Send data while reading the echo; return what came back and the error that ended it."""
    got = bytearray()
    err: list[BaseException] = []

    def reader() -> None:
        try:
            while len(got) < len(data):
                chunk = s.recv(65536)
                if not chunk:
                    raise EOFError
                got.extend(chunk)
        except (OSError, EOFError) as e:
            err.append(e)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        s.sendall(data)
    except OSError as e:
        err.append(e)
    t.join(timeout=30)
    assert not t.is_alive()
    return bytes(got), (err[0] if err else None)


def test_passthrough_half_close_and_counters(proxy: FaultProxy, echo: EchoServer) -> None:
    data = os.urandom(300_000)
    with connect(proxy) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)  # half-close: the FIN is passed on, the echo still comes back
        assert recv_exactly(s, len(data)) == data
        assert s.recv(1) == b""  # then the server's FIN
    assert wait_until(lambda: proxy.active == 0)
    assert (proxy.connections, proxy.cuts) == (1, 0)
    assert proxy.bytes_up == proxy.bytes_down == len(data)
    assert echo.received == [len(data)]


def test_latency_delays_each_direction_and_keeps_order(proxy: FaultProxy) -> None:
    with connect(proxy) as s:
        assert pump(s, b"warm")[0] == b"warm"
        proxy.latency_s = 0.1
        t0 = time.monotonic()
        s.sendall(b"ping")
        assert recv_exactly(s, 4) == b"ping"
        rtt = time.monotonic() - t0
        assert 0.2 <= rtt < 1.0, rtt  # 0.1 s up, 0.1 s down
        # Many small writes: delayed, not serialised (not 40 x 0.2 s), and in order.
        msgs = [f"<{i:04d}>".encode() for i in range(40)]
        t0 = time.monotonic()
        for m in msgs:
            s.sendall(m)
            time.sleep(0.002)
        assert recv_exactly(s, sum(map(len, msgs))) == b"".join(msgs)
        assert time.monotonic() - t0 < 1.5
        proxy.latency_s = 0.0  # applies to new chunks while running
        rtts = []
        for _ in range(3):  # the best of 3: robust to a scheduling hiccup on a busy host
            t0 = time.monotonic()
            s.sendall(b"pong")
            assert recv_exactly(s, 4) == b"pong"
            rtts.append(time.monotonic() - t0)
        assert min(rtts) < 0.1, rtts


def test_rate_throttles_each_direction(proxy: FaultProxy) -> None:
    data = os.urandom(600_000)
    with connect(proxy) as s:
        proxy.rate_bytes_per_s = 1_000_000
        t0 = time.monotonic()
        got, err = pump(s, data)
        took = time.monotonic() - t0
        assert err is None and got == data
        # 0.6 s for each direction, pipelined; a burst of 20 KB is allowed.
        assert 0.5 <= took < 3.0, took
        proxy.rate_bytes_per_s = None
        t0 = time.monotonic()
        got, err = pump(s, data)
        assert err is None and got == data
        assert time.monotonic() - t0 < 0.4


def test_cut_after_bytes_cuts_each_connection_at_that_byte(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.cut_after_bytes = 10_000
    for n in (1, 2):
        with connect(proxy) as s:
            got, err = pump(s, os.urandom(50_000))
            assert err is not None, "the connection was not cut"
            assert len(got) <= 10_000
        assert proxy.cuts == n  # counted before the RST went out
        assert proxy.bytes_up == 10_000 * n
    assert wait_until(lambda: len(echo.received) == 2)
    assert all(r <= 10_000 for r in echo.received), echo.received
    proxy.cut_after_bytes = None
    with connect(proxy) as s:
        data = os.urandom(50_000)
        assert pump(s, data) == (data, None)
    assert proxy.cuts == 2


def test_lowering_cut_after_bytes_cuts_a_live_connection(proxy: FaultProxy) -> None:
    with connect(proxy) as s:
        assert pump(s, b"x" * 5000)[0] == b"x" * 5000
        proxy.cut_after_bytes = 1000
        assert is_broken(s)
    assert proxy.cuts == 1 and proxy.active == 0


def broken_at_connect(proxy: FaultProxy) -> bool:
    """Connect, expecting the connection to end at once (the reset may already fail connect)."""
    try:
        s = connect(proxy)
    except ConnectionResetError:
        return True
    with s:
        return is_broken(s, timeout=2)


def test_cut_after_zero_cuts_at_connect(proxy: FaultProxy) -> None:
    proxy.cut_after_bytes = 0
    assert broken_at_connect(proxy)
    assert proxy.cuts == 1 and proxy.bytes_up == 0


def cut_point(echo: EchoServer, seed: int, p: float, size: int) -> tuple[int, int]:
    """(bytes through the proxy both ways, cuts) for one connection streaming `size` bytes."""
    proxy = FaultProxy("127.0.0.1", echo.port, cut_probability_per_mb=p, seed=seed)
    with proxy, connect(proxy) as s:
        pump(s, os.urandom(size))
        assert wait_until(lambda: proxy.active == 0 or proxy.bytes_down == size)
        return proxy.bytes_up + proxy.bytes_down, proxy.cuts


def test_random_cuts_are_seeded(echo: EchoServer) -> None:
    size = 6 * MIB
    a = cut_point(echo, 7, 0.9, size)
    assert a[1] == 1 and a[0] < 2 * size, a  # p = 0.9 per MiB: cut long before 12 MiB went through
    assert cut_point(echo, 7, 0.9, size) == a  # same seed, same byte
    assert cut_point(echo, 8, 0.9, size) != a
    assert cut_point(echo, 7, 0.0, MIB) == (2 * MIB, 0)


def test_cut_all_cuts_every_live_connection(proxy: FaultProxy) -> None:
    socks = [connect(proxy) for _ in range(3)]
    try:
        for s in socks:
            assert pump(s, b"hello")[0] == b"hello"
        assert proxy.active == 3
        proxy.cut_all()
        assert proxy.cuts == 3 and proxy.active == 0
        assert all(is_broken(s) for s in socks)
    finally:
        for s in socks:
            s.close()
    with connect(proxy) as s:  # the listener still works
        assert pump(s, b"again") == (b"again", None)


def test_stop_closes_everything(echo: EchoServer) -> None:
    proxy = FaultProxy("127.0.0.1", echo.port, latency_s=0.01).start()
    s = connect(proxy)
    assert pump(s, b"hi")[0] == b"hi"
    thread = proxy._thread
    proxy.stop()
    proxy.stop()  # idempotent
    assert thread is not None and not thread.is_alive()
    assert is_broken(s)
    s.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2)


def test_target_refusing_closes_the_client() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # bound, not listening: connections are refused
        with FaultProxy("127.0.0.1", closed_port) as proxy:
            assert broken_at_connect(proxy)
            assert wait_until(lambda: proxy.connections == 1)


def test_only_loopback_targets() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy("10.1.2.3", 22)
