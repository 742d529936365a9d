"""`transport=ssh`: paramiko to a `drsync agent` on the standby.

Security: key authentication only (no password, no agent, no key search), host keys checked
strictly against `known-hosts-file` (unknown or changed = refused, naming host and
fingerprint), the remote command built from quoted words only.

Throughput: up to `parrallel-process` links, each its own TCP connection and agent (paramiko
encrypts in one thread per connection, so parallel connections are what scales), kept open
for the whole round. A shared token bucket applies `bandwidth-limit` across all of them.
Transient failures (connection reset, EOF, timeouts) reconnect and resume from the bytes the
agent already holds, up to `check-balance-retry-times` times.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import logging
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import paramiko

from drsync import __version__
from drsync.config import Settings
from drsync.config.private import check_private_file
from drsync.errors import AuthError, ConfigError, HostKeyError, IntegrityError, RoleError, TransportError
from drsync.fsutil import CHUNK
from drsync.site.confine import safe_relpath
from drsync.transport.base import Area, Outgoing, SendProgress, Transport
from drsync.transport.protocol import TABLE_READ_CHUNK, read_header, read_payload, write_frame
from drsync.transport.window import WindowedSender

log = logging.getLogger("drsync.ssh")
WINDOW = 16 << 20  # our receive window (replies); the send direction is sshd's window
# Preferred first when the server offers them (OpenSSH does): AES-GCM needs no separate MAC,
# which cost 12 % of the sender's CPU with aes128-ctr + hmac-sha2-256. Measured: shipping
# +27-33 % on 2 cores (bench/RESULTS.md, "Initial sync over SSH"). Others stay as fallback.
FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _fast_transport(sock: Any, **kwargs: Any) -> paramiko.Transport:
    t = paramiko.Transport(sock, **kwargs)
    opts = t.get_security_options()
    offered = tuple(c for c in FAST_CIPHERS if c in opts.ciphers)
    opts.ciphers = offered + tuple(c for c in opts.ciphers if c not in offered)
    return t
TRANSIENT = (EOFError, OSError, paramiko.SSHException, socket.timeout)


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _RefuseUnknownHost(paramiko.MissingHostKeyPolicy):
    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise HostKeyError(
            f"ssh: host {hostname} is not in {self.known_hosts}: it offered {key.get_name()} key "
            f"{fingerprint(key)}; refused",
            hint=f"check that fingerprint with the host's administrator, then add the key to "
                 f"{self.known_hosts} (e.g. ssh-keyscan -p PORT HOST >> {self.known_hosts})",
        )


class RateLimiter:
    """A token bucket shared by every stream: `bandwidth-limit` bytes per second in total."""

    def __init__(self, rate: int | None) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._tokens = float(rate or 0)
        self._last = time.monotonic()

    def take(self, n: int) -> None:
        if not self.rate:
            return
        with self._lock:
            now = time.monotonic()
            self._tokens = min(float(self.rate), self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)


class Link:
    """One SSH connection running one agent; requests on it are strictly sequential."""

    def __init__(self, settings: Settings, command: str, host: str, role_epoch: int = 0,
                 purpose: str = "") -> None:
        self.where = f"{settings.username}@{host}:{settings.ssh_port}"
        self.role_epoch = role_epoch  # said at hello: an agent of a newer epoch refuses us
        self.purpose = purpose  # "reprotect": an old primary asking for the reprotect ops only
        known = settings.known_hosts_file
        key = settings.ssh_key_file
        if known is None or key is None:
            raise ConfigError("transport=ssh needs known-hosts-file and ssh-key-file")
        check_private_file(key, "ssh-key-file")
        self.client = paramiko.SSHClient()
        try:
            self.client.load_host_keys(str(known))
        except OSError as e:
            raise ConfigError(f"known-hosts-file {known}: {e.strerror or e}") from None
        self.client.set_missing_host_key_policy(_RefuseUnknownHost(known))
        try:
            self.client.connect(
                host, port=settings.ssh_port, username=settings.username, key_filename=str(key),
                allow_agent=False, look_for_keys=False, timeout=20, banner_timeout=20, auth_timeout=20,
                transport_factory=_fast_transport,
            )
        except paramiko.BadHostKeyException as e:
            self.client.close()  # a failed login must not leave paramiko's thread running
            raise HostKeyError(
                f"ssh: host key of {host} CHANGED: it offered {fingerprint(e.key)}, {known} expects "
                f"{fingerprint(e.expected_key)}; refused (possible man-in-the-middle)",
                hint=f"if the host was legitimately re-installed, replace its line in {known}",
            ) from None
        except paramiko.AuthenticationException as e:
            alive = (t := self.client.get_transport()) is not None and t.is_active()
            self.client.close()
            if not alive:  # the connection died during authentication: a glitch, not a refusal
                raise TransportError(f"ssh: connection to {self.where} lost during login ({e})") from None
            raise AuthError(
                f"ssh: {self.where} refused the key {key}",
                hint=f"add the public key ({key}.pub) to ~{settings.username}/.ssh/authorized_keys "
                     "on the other host (drsync prepare prints the line)",
            ) from None
        except (EOFError, OSError, paramiko.SSHException) as e:
            self.client.close()
            raise TransportError(f"ssh: cannot connect to {self.where}: {type(e).__name__} {e}") from None
        except BaseException:
            self.client.close()  # e.g. HostKeyError from the unknown-host policy
            raise
        try:
            self._start_agent(command)
        except (EOFError, OSError, paramiko.SSHException) as e:
            self.client.close()
            raise TransportError(f"ssh: connection to {self.where} lost while starting the agent "
                                 f"({type(e).__name__} {e})") from None
        except BaseException:
            self.client.close()
            raise

    def _start_agent(self, command: str) -> None:
        transport = self.client.get_transport()
        assert transport is not None
        transport.set_keepalive(15)
        self.channel = transport.open_session(window_size=WINDOW)
        self.channel.exec_command(command)
        self.r: Any = self.channel.makefile("rb", CHUNK)
        self.w: Any = self.channel.makefile_stdin("wb", CHUNK)
        self.command = command
        greeting: dict[str, Any] = {"op": "hello", "role_epoch": self.role_epoch}
        if self.purpose:
            greeting["purpose"] = self.purpose
        hello = self.request(greeting)
        if hello.get("version") != __version__:
            raise TransportError(
                f"ssh: {self.where} runs drsync {hello.get('version')}, this host {__version__}",
                hint="install the same drsync version on both sites",
            )
        self.remote_time = float(hello.get("time", 0.0))

    def request(self, header: dict[str, Any], payload: bytes = b"") -> dict[str, Any]:
        write_frame(self.w, header, payload)
        return self.reply()

    def reply(self) -> dict[str, Any]:
        try:
            header = read_header(self.r)
        except EOFError:
            header = None
        if header is None:
            err = self._stderr()
            raise TransportError(f"ssh: the agent on {self.where} stopped"
                                 + (f": {err}" if err else ""),
                                 hint="check remote-drsync-command: drsync must be installed there")
        self.last_payload = read_payload(self.r, header)
        if not header.get("ok"):
            code, msg = header.get("code", ""), header.get("error", "unknown error")
            if code == RoleError.code:  # not transient: never retried
                older = "older than this site's" in str(msg)  # our epoch: we were failed over
                raise RoleError(f"agent on {self.where}: {msg}",
                                hint="run `drsync reprotect` on this site" if older else "")
            if code == "ENOSPC":
                raise TransportError(f"standby disk full: {msg}", hint="free space on the standby")
            raise TransportError(f"agent on {self.where}: {msg}")
        return header

    def _stderr(self) -> str:
        with contextlib.suppress(Exception):
            if self.channel.recv_stderr_ready():
                return self.channel.recv_stderr(4096).decode(errors="replace").strip()[-500:]
        return ""

    def close(self) -> None:
        transport = self.client.get_transport()
        with contextlib.suppress(Exception):
            if transport is not None and transport.is_active() and not self.channel.closed:
                write_frame(self.w, {"op": "bye"})
        # Close the buffered files here: left to the garbage collector on a dead connection,
        # their flush prints "Exception ignored in BufferedFile.__del__" into the log.
        for f in (self.w, self.r):
            try:
                f.close()
            except Exception:
                # A dead channel: close() failed in its flush and left the file open, so the
                # collector would flush it again and print a traceback. Drop the unsent bytes
                # (they can never arrive) and close for good.
                f._wbuffer = io.BytesIO()
                with contextlib.suppress(Exception):
                    f.close()
        # Drop them now: a link can outlive its close in a reference cycle (an exception's
        # traceback holds the frame that held it), and the collector finalises a cycle's
        # BytesIO before the BufferedFile whose __del__ flushes it: "I/O operation on closed
        # file" printed at exit.
        self.w = self.r = None
        with contextlib.suppress(Exception):
            self.client.close()


Peer = Literal["standby", "primary"]


def agent_command(settings: Settings, peer: Peer = "standby") -> str:
    """The exact remote command line; every word quoted, nothing taken from data."""
    words = [*settings.remote_drsync_command, "agent",
             "--media-root", str(settings.media_dir(peer)),
             "--metadata-root", str(settings.metadata_dir(peer)),
             "--warehouse-root", str(settings.warehouse(peer))]
    if peer == "standby" and settings.remote_config_file is not None:
        words += ["--config", str(settings.remote_config_file)]
    return " ".join(shlex.quote(w) for w in words)


class SshTransport(Transport):
    """Talks to the agent of `peer`: the standby (shipping sets) or, from the standby, the
    primary (reading its state for show-progress, the mutual trust the DWS tool requires)."""

    def __init__(self, settings: Settings, peer: Peer = "standby", purpose: str = "",
                 role_epoch: Callable[[], int] = lambda: 0) -> None:
        self.settings = settings
        self.role_epoch = role_epoch  # this site's epoch, said at each link's hello
        self.peer = peer
        self.purpose = purpose
        self.host = (settings.restore_host_ip if peer == "standby" else settings.primary_host_ip) or ""
        self.command = agent_command(settings, peer)
        self.limiter = RateLimiter(settings.bandwidth_limit)
        self.retries = settings.check_balance_retry_times
        # Idle links and how many exist; a thread waits on the condition for a link to come
        # back *or* for a failed one to free its slot (else a dead link would block it forever).
        self._idle: list[Link] = []
        self._count = 0
        self._cond = threading.Condition()
        self._max = settings.workers
        self._idle.append(self._connect_retrying())  # fail fast on a bad key or host key
        self._count = 1

    def _connect(self) -> Link:
        return Link(self.settings, self.command, self.host, self.role_epoch(),
                    self.purpose)

    def _connect_retrying(self) -> Link:
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                return self._connect()
            except (HostKeyError, AuthError, ConfigError):
                raise
            except TransportError as e:
                if attempt == self.retries:
                    raise
                log.warning("%s; retrying (%d of %d)", e.message, attempt + 1, self.retries)
                time.sleep(delay)
                delay = min(delay * 2, 10)
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _link(self) -> Iterator[Link]:
        with self._cond:
            while not self._idle and self._count >= self._max:
                self._cond.wait()
            link = self._idle.pop() if self._idle else None
            if link is None:
                self._count += 1
        if link is None:
            try:
                link = self._connect()
            except BaseException:
                self._release(None)
                raise
        try:
            yield link
        except BaseException:
            link.close()
            self._release(None)
            raise
        self._release(link)

    def _release(self, link: Link | None) -> None:
        with self._cond:
            if link is None:
                self._count -= 1
            else:
                self._idle.append(link)
            self._cond.notify()

    def _with_retry(self, what: str, fn: Any) -> Any:
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                with self._link() as link:
                    return fn(link)
            except (HostKeyError, AuthError, IntegrityError, ConfigError):
                raise
            except TransportError as e:
                if "disk full" in e.message or attempt == self.retries:
                    raise
                log.warning("%s: %s; retrying (%d of %d)", what, e.message, attempt + 1, self.retries)
            except TRANSIENT as e:
                if attempt == self.retries:
                    raise TransportError(f"ssh: {what} failed after {self.retries + 1} attempts: {e}",
                                         hint="check the network and the standby host") from None
                log.warning("%s: connection lost (%s); reconnecting (%d of %d)",
                            what, e, attempt + 1, self.retries)
            time.sleep(delay)
            delay = min(delay * 2, 10)
        raise AssertionError("unreachable")

    def send_file(
        self, local: Path, area: Area, rel: str, *, size: int, blake2b: str,
        progress: SendProgress | None = None,
    ) -> int:
        return self.send_files(area, [Outgoing(local, rel, size, blake2b)], workers=1, progress=progress)

    def send_files(
        self, area: Area, files: Sequence[Outgoing], *, workers: int,
        progress: SendProgress | None = None, done: Callable[[Outgoing], None] | None = None,
    ) -> int:
        """Windowed: several files in flight per link, acknowledged later (window.py)."""
        for f in files:
            safe_relpath(f.rel, table="(transport)", where=f"{area} path")
        sender = WindowedSender(self._link, self.limiter, self.retries, TRANSIENT, area, files,
                                progress, done)
        return sender.run(min(workers, self._max))

    def write_bytes(self, area: Area, rel: str, data: bytes) -> None:
        safe_relpath(rel, table="(transport)", where=f"{area} path")
        self._with_retry(f"writing {rel}", lambda link: link.request(
            {"op": "write", "area": area, "rel": rel}, data))

    def read_bytes(self, area: Area, rel: str) -> bytes | None:
        def go(link: Link) -> bytes | None:
            reply = link.request({"op": "read", "area": area, "rel": rel})
            return link.last_payload if reply.get("found") else None

        result: bytes | None = self._with_retry(f"reading {rel}", go)
        return result

    def read_table_file(self, table: str, rel: str) -> bytes | None:
        """A file of a table in the agent's warehouse, in chunks below the payload limit."""
        parts: list[bytes] = []
        offset, size = 0, None
        while size is None or offset < size:
            def go(link: Link, at: int = offset) -> tuple[int, bytes] | None:
                reply = link.request({"op": "tableread", "table": table, "rel": rel, "offset": at,
                                      "length": TABLE_READ_CHUNK})
                return (int(reply["size"]), link.last_payload) if reply.get("found") else None

            got: tuple[int, bytes] | None = self._with_retry(f"reading {table}/{rel}", go)
            if got is None:
                return None
            size, chunk = got
            if not chunk and offset < size:
                raise TransportError(f"ssh: {table}/{rel} shrank while it was read on {self.host}")
            parts.append(chunk)
            offset += len(chunk)
        return b"".join(parts)

    def list_dir(self, area: Area, rel: str) -> dict[str, int]:
        def go(link: Link) -> dict[str, int]:
            files = link.request({"op": "list", "area": area, "rel": rel}).get("files", {})
            return {str(k): int(v) for k, v in files.items()}

        result: dict[str, int] = self._with_retry(f"listing {rel}", go)
        return result

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        """One request of the agent's fixed command set (hello, df, prepare, probe, ...)."""
        result: dict[str, Any] = self._with_retry(op, lambda link: link.request({"op": op, **args}))
        return result

    def call_once(self, op: str, **args: Any) -> dict[str, Any]:
        """The same without retry, for requests whose failure is an answer, not a glitch."""
        with self._link() as link:
            return link.request({"op": op, **args})

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
        for link in idle:
            link.close()
