"""`drsync agent`: the standby's end of the SSH transport.

Started by the primary over an SSH exec channel (or pinned with a forced `command=` in
authorized_keys), it serves the fixed command set of `protocol.py` on stdin/stdout, confined to
two roots given on its command line: the media (bundle inbox) and metadata destinations.
Plain SFTP cannot do what this does on the receiving side: hash the bytes that actually
landed, fsync them, and rename only a verified file into place.

This module frames and dispatches, and serves the data operations itself; what the site does
beyond moving bytes (restore, verify, promote, reprotect, ...) and the role-epoch guard come in
as an `Operations` table (drsync/standby/agentops.py), so transport/ knows no standby logic.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from drsync import __version__
from drsync.errors import DrsyncError, TransportError
from drsync.faults import crash_point
from drsync.fsutil import CHUNK, atomic_write_bytes, ensure_dir, fsync_dir, open_private
from drsync.logsetup import setup_stderr_logging
from drsync.nofollow import read_range_nofollow, refuse_symlink_path
from drsync.sets.digest import algorithm_of, file_hash, new_hash
from drsync.sets.manifest import FORMAT_VERSION
from drsync.site.confine import safe_relpath
from drsync.site.names import relpath_of
from drsync.transport.completions import Completions, Finish
from drsync.transport.confine import check_primary_write
from drsync.transport.protocol import (
    PROTOCOL_VERSION,
    TABLE_READ_CHUNK,
    FrameError,
    read_exact,
    read_header,
    read_payload,
    write_frame,
)

PART_SUFFIX = ".part"


@dataclass(frozen=True)
class Deferred:
    """A request received whole whose slow rest (`finish`, e.g. a put's fsync and rename) runs
    on the completions thread while the next request is read (completions.py)."""

    key: str  # the file it finishes: a later put of the same file waits for it
    finish: Finish


# A data operation: (request, the stream its payload is on) -> (reply fields, reply payload),
# or a Deferred whose finish makes the reply.
DataOp = Callable[[dict[str, Any], BinaryIO], "tuple[dict[str, Any], bytes] | Deferred"]
# A site operation: (the agent, the request) -> the reply's fields. No payload either way.
Handler = Callable[["Agent", dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Operations:
    """What the site behind the agent does beyond moving bytes (drsync/standby/agentops.py):
    its handlers by op name, and the role-epoch guard applied at hello and to every request."""

    handlers: Mapping[str, Handler]
    hello_check: Callable[[Path, int | None, str], None]  # (metadata root, caller epoch, purpose)
    allowed: Callable[[Path, int | None, str, str], None]  # the same and the op


class Agent:
    def __init__(self, media_root: Path, metadata_root: Path, config: Path | None = None,
                 warehouse_root: Path | None = None, *, operations: Operations) -> None:
        self.roots = {"media": media_root, "metadata": metadata_root}
        self.operations = operations
        self.config = config
        self.warehouse = warehouse_root  # read only: tables are fingerprinted, never written here
        self.caller_epoch: int | None = None  # from hello
        self.purpose = ""  # from hello: "reprotect" lets an old primary use the reprotect ops

    def path(self, req: dict[str, Any], key: str = "rel", *, allow_root: bool = False) -> Path:
        """The area path `req[key]` names. "." (the root itself) only where asked for: a file
        op on it would reach the root's parent (`<root>.part`)."""
        area = req.get("area")
        if area not in self.roots:
            raise TransportError(f"unknown area {area!r}")
        rel = req.get(key)
        if not isinstance(rel, str):
            raise TransportError(f"missing {key}")
        if rel == "." and allow_root:
            return self.roots[area]
        return self.roots[area] / safe_relpath(rel, table="(agent)", where=f"{area} path")

    def _writable(self, req: dict[str, Any]) -> Path:
        """The path of a put/write: one a primary legitimately writes, no symlink on the way."""
        check_primary_write(str(req.get("op")), req.get("area"), req.get("rel"))
        p = self.path(req)
        root = self.roots[str(req["area"])]
        rel = str(req["rel"])
        for candidate in (rel, rel + PART_SUFFIX):
            refuse_symlink_path(root, candidate, table="(agent)", what="path")
        return p

    def serve(self, r: BinaryIO, w: BinaryIO) -> None:
        self.completions = Completions(lambda frame: write_frame(w, frame))
        try:
            self._serve(r, w)
        finally:
            self.completions.close()  # received files are finished even when the primary left

    def _serve(self, r: BinaryIO, w: BinaryIO) -> None:
        def reply(frame: dict[str, Any], payload: bytes = b"") -> None:
            self.completions.settle()  # replies in request order: queued finishes first
            write_frame(w, frame, payload)

        while True:
            try:
                req = read_header(r)
            except FrameError as e:  # the bad frame was consumed whole: answer, stay in sync
                reply({"ok": False, "code": e.code, "error": e.message})
                continue
            if req is None:
                return
            op = req.get("op")
            try:
                if op == "bye":
                    reply({"ok": True})
                    return
                handler = self._handler(op)
                if handler is not None and op != "hello":
                    try:
                        self.operations.allowed(self.roots["metadata"], self.caller_epoch, self.purpose,
                                                str(op))
                    except DrsyncError:
                        n = req.get("length", 0)
                        self._drain(r, n if isinstance(n, int) and n > 0 else 0)  # stay in sync
                        raise
                if handler is None:
                    read_payload(r, req)
                    raise TransportError(f"unknown operation {op!r}")
                result = handler(req, r)
                if isinstance(result, Deferred):
                    self.completions.defer(result.key, result.finish)
                else:
                    reply({"ok": True, **result[0]}, result[1])
            except (DrsyncError, OSError) as e:
                reply(_error_frame(e))
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
                # A request no check above foresaw (a hostile or broken peer): answer in one
                # line and end the connection, whose stream may be out of sync by now.
                reply({"ok": False, "code": "EPROTO", "error": f"{op!r}: bad request ({type(e).__name__})"})
                return

    def _handler(self, op: object) -> DataOp | None:
        """The data operations are this class's `op_*`; the site's come from `operations`."""
        if not (isinstance(op, str) and op.isalpha()):
            return None
        data_op = getattr(self, f"op_{op}", None)
        if data_op is not None:
            return data_op
        site_op = self.operations.handlers.get(op)
        if site_op is None:
            return None
        return lambda req, r: (site_op(self, req), b"")

    def op_hello(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        # The caller's role epoch: an old primary (failed over) is refused here, for good.
        self.caller_epoch = req.get("role_epoch") if isinstance(req.get("role_epoch"), int) else None
        self.purpose = str(req.get("purpose") or "")
        self.operations.hello_check(self.roots["metadata"], self.caller_epoch, self.purpose)
        return {"version": __version__, "format": FORMAT_VERSION, "protocol": PROTOCOL_VERSION,
                "time": time.time(), "pid": os.getpid()}, b""

    def op_stat(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        p = self.path(req)
        part = p.with_name(p.name + PART_SUFFIX)
        size = p.stat().st_size if p.is_file() else None
        part_size = part.stat().st_size if part.is_file() else None
        reply: dict[str, Any] = {"size": size, "part": part_size}
        if size is not None and req.get("hash"):
            # "hash": the digest the caller wants to compare with (its algorithm is used)
            like = req["hash"] if isinstance(req["hash"], str) else None
            reply["blake2b"] = file_hash(p, like=_known_digest(like) if like else None)
        return reply, b""

    def op_put(self, req: dict[str, Any], r: BinaryIO) -> Deferred:
        """Receive `length` bytes at `offset` of rel.part; then (deferred: completions.py)
        fsync, verify the hash and rename when complete.

        The payload is always consumed, even on error, so the stream stays in sync."""
        offset, length, size, want = (req.get(k) for k in ("offset", "length", "size", "blake2b"))
        if not isinstance(length, int) or length < 0:
            raise TransportError("put needs an integer length")  # cannot even drain: fatal
        remaining = length  # bytes of payload still in the stream: drained on any error
        try:
            if not (isinstance(offset, int) and isinstance(size, int) and offset >= 0 and size >= 0
                    and isinstance(want, str)):
                raise TransportError("put needs integer offset/size and a blake2b")
            _known_digest(want)
            p = self._writable(req)
            if self.completions.pending(str(p)):
                self.completions.settle()  # the same file again: its earlier put finishes first
            ensure_dir(p.parent)
            part = p.with_name(p.name + PART_SUFFIX)
            have = part.stat().st_size if part.exists() else 0
            if offset != have and offset != 0:
                raise TransportError(f"{p.name}: resume offset {offset} but {have} bytes are there")
            h = new_hash(like=want)  # hashed while it arrives: the file is never read back
            if offset:  # a resumed transfer: the received prefix first (offset == its size)
                with open(os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as prefix:
                    while chunk := prefix.read(CHUNK):
                        h.update(chunk)
            with open_private(part, truncate=not offset) as f:
                f.seek(offset)
                f.truncate()
                while remaining:
                    chunk = r.read(min(CHUNK, remaining))
                    if not chunk:
                        raise EOFError("stream ended inside a put")
                    remaining -= len(chunk)  # consumed from the stream, whether or not it lands
                    f.write(chunk)
                    h.update(chunk)
                    crash_point("agent.put_chunk")  # the agent dies inside a put
        except BaseException:
            self._drain(r, remaining)
            raise
        got, done = h.hexdigest(), offset + length
        return Deferred(str(p), lambda: _finish_put(part, p, done, size, got == want))

    @staticmethod
    def _drain(r: BinaryIO, n: int) -> None:
        with contextlib.suppress(EOFError):
            while n > 0:
                n -= len(read_exact(r, min(CHUNK, n)))

    def op_write(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        data = read_payload(r, req)  # first: a refused write still leaves the stream in sync
        atomic_write_bytes(self._writable(req), data)
        return {}, b""

    def op_read(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        try:
            return {"found": True}, self.path(req).read_bytes()
        except FileNotFoundError:
            return {"found": False}, b""

    def op_tableread(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        """A range of one table file, read-only from --warehouse-root (a standby fetching a file
        it found missing or damaged; the primary's tables are never written through here)."""
        if self.warehouse is None:
            raise TransportError("this agent was started without --warehouse-root: it cannot read tables")
        table, rel, offset, length = (req.get(k) for k in ("table", "rel", "offset", "length"))
        if not (isinstance(table, str) and isinstance(rel, str) and isinstance(offset, int)
                and isinstance(length, int) and offset >= 0 and 0 < length <= TABLE_READ_CHUNK):
            raise TransportError("tableread: bad arguments")
        where = f"{safe_relpath(relpath_of(table), table=table, where='table name')}/" \
                f"{safe_relpath(rel, table=table, where='file path')}"
        found = read_range_nofollow(self.warehouse, where, offset, length, table=table)
        if found is None:
            return {"found": False}, b""
        return {"found": True, "size": found[0]}, found[1]

    def op_list(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        files: dict[str, int] = {}
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for e in os.scandir(self.path(req, allow_root=True)):
                if e.is_file(follow_symlinks=False):
                    files[e.name] = e.stat().st_size
        return {"files": files}, b""

    def op_df(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        root = self.roots.get(str(req.get("area")))
        if root is None:
            raise TransportError(f"unknown area {req.get('area')!r}")
        probe = root
        while not probe.exists():
            probe = probe.parent
        usage = shutil.disk_usage(probe)
        return {"free": usage.free, "total": usage.total}, b""


def _finish_put(part: Path, p: Path, done: int, size: int, matches: bool) -> dict[str, Any]:
    """The deferred rest of a put: make the .part durable, then verify and rename it."""
    try:
        fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if done < size:
            return {"ok": True, "complete": False, "have": done}
        if done > size or not matches:
            part.unlink()
            return {"ok": True, "complete": False, "have": 0, "corrupt": True}
        try:
            os.replace(part, p)
        except OSError:
            part.unlink()  # e.g. a directory of that name: a retry would fail the same way
            raise
        fsync_dir(p.parent)
        crash_point("agent.put_renamed")  # in place and durable, the reply not yet sent
        return {"ok": True, "complete": True, "have": done}
    except (DrsyncError, OSError) as e:
        return _error_frame(e)


def _error_frame(e: DrsyncError | OSError) -> dict[str, Any]:
    """The reply to a request that failed: the error's code and one line saying why."""
    if isinstance(e, DrsyncError):
        return {"ok": False, "code": e.code, "error": e.message}
    code = "ENOSPC" if e.errno == 28 else "EIO"
    return {"ok": False, "code": code, "error": f"{e.strerror or e} ({e.filename or 'standby'})"}


def _known_digest(digest: str) -> str:
    try:
        algorithm_of(digest)
    except ValueError as e:
        raise TransportError(f"bad digest in request: {e}") from None
    return digest


def run_agent(media_root: Path, metadata_root: Path, config: Path | None = None,
              warehouse_root: Path | None = None, *, operations: Operations) -> int:
    setup_stderr_logging("WARNING")  # handlers log through the one redacting setup (logsetup.py)
    # Pinned with command="drsync agent ..." in authorized_keys, sshd runs us whatever the
    # client asked; a `drsync version` probe (prepare's reverse check) still gets its answer.
    original = os.environ.get("SSH_ORIGINAL_COMMAND", "").split()
    if original and original[-1] == "version":
        print(__version__)
        return 0
    for label, root in (("media", media_root), ("metadata", metadata_root), ("warehouse", warehouse_root)):
        if root is not None and not root.is_absolute():
            print(f"drsync agent: --{label}-root must be absolute: {root}", file=sys.stderr)
            return 2
    r = open(sys.stdin.fileno(), "rb", buffering=CHUNK, closefd=False)  # noqa: SIM115
    w = open(sys.stdout.fileno(), "wb", buffering=CHUNK, closefd=False)  # noqa: SIM115
    try:
        Agent(media_root, metadata_root, config, warehouse_root, operations=operations).serve(r, w)
    except (EOFError, BrokenPipeError):
        return 0  # the primary went away: nothing half-renamed, .part files stay for resume
    except TransportError as e:
        print(f"drsync agent: {e.message}", file=sys.stderr)
        return 1
    return 0
