"""`drsync agent`: the standby's end of the SSH transport.

Started by the primary over an SSH exec channel (or pinned with a forced `command=` in
authorized_keys), it serves the fixed command set of `protocol.py` on stdin/stdout, confined to
two roots given on its command line: the media (bundle inbox) and metadata destinations.
Plain SFTP cannot do what this does on the receiving side: hash the bytes that actually
landed, fsync them, and rename only a verified file into place.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from drsync import __version__
from drsync.errors import DrsyncError, TransportError
from drsync.faults import crash_point
from drsync.fsutil import CHUNK, atomic_write_bytes, ensure_dir, fsync_dir, open_private
from drsync.nofollow import refuse_symlink_path
from drsync.roles.remote import (
    agent_independent,
    agent_promote,
    agent_settings,
    hello_check,
    op_allowed,
    reprotect_info,
    reprotected,
    table_commits,
)
from drsync.sets.bundle import file_hash
from drsync.sets.manifest import FORMAT_VERSION
from drsync.site.confine import safe_relpath
from drsync.transport.confine import check_primary_write
from drsync.transport.protocol import (
    PROTOCOL_VERSION,
    FrameError,
    read_exact,
    read_header,
    read_payload,
    write_frame,
)

PART_SUFFIX = ".part"


class Agent:
    def __init__(self, media_root: Path, metadata_root: Path, config: Path | None = None,
                 warehouse_root: Path | None = None) -> None:
        self.roots = {"media": media_root, "metadata": metadata_root}
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
        while True:
            try:
                req = read_header(r)
            except FrameError as e:  # the bad frame was consumed whole: answer, stay in sync
                write_frame(w, {"ok": False, "code": e.code, "error": e.message})
                continue
            if req is None:
                return
            op = req.get("op")
            try:
                if op == "bye":
                    write_frame(w, {"ok": True})
                    return
                handler = getattr(self, f"op_{op}", None) if isinstance(op, str) and op.isalpha() else None
                if handler is not None and op != "hello":
                    try:
                        op_allowed(self.roots["metadata"], self.caller_epoch, self.purpose, str(op))
                    except DrsyncError:
                        n = req.get("length", 0)
                        self._drain(r, n if isinstance(n, int) and n > 0 else 0)  # stay in sync
                        raise
                if handler is None:
                    read_payload(r, req)
                    raise TransportError(f"unknown operation {op!r}")
                reply, payload = handler(req, r)
                write_frame(w, {"ok": True, **reply}, payload)
            except DrsyncError as e:
                write_frame(w, {"ok": False, "code": e.code, "error": e.message})
            except OSError as e:
                code = "ENOSPC" if e.errno == 28 else "EIO"
                write_frame(w, {"ok": False, "code": code,
                                "error": f"{e.strerror or e} ({e.filename or 'standby'})"})
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
                # A request no check above foresaw (a hostile or broken peer): answer in one
                # line and end the connection, whose stream may be out of sync by now.
                write_frame(w, {"ok": False, "code": "EPROTO",
                                "error": f"{op!r}: bad request ({type(e).__name__})"})
                return

    def op_hello(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        # The caller's role epoch: an old primary (failed over) is refused here, for good.
        self.caller_epoch = req.get("role_epoch") if isinstance(req.get("role_epoch"), int) else None
        self.purpose = str(req.get("purpose") or "")
        hello_check(self.roots["metadata"], self.caller_epoch, self.purpose)
        return {"version": __version__, "format": FORMAT_VERSION, "protocol": PROTOCOL_VERSION,
                "time": time.time(), "pid": os.getpid()}, b""

    def op_stat(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        p = self.path(req)
        part = p.with_name(p.name + PART_SUFFIX)
        size = p.stat().st_size if p.is_file() else None
        part_size = part.stat().st_size if part.is_file() else None
        reply: dict[str, Any] = {"size": size, "part": part_size}
        if size is not None and req.get("hash"):
            reply["blake2b"] = file_hash(p)
        return reply, b""

    def op_put(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        """Receive `length` bytes at `offset` of rel.part; verify and rename when complete.

        The payload is always consumed, even on error, so the stream stays in sync."""
        offset, length, size, want = (req.get(k) for k in ("offset", "length", "size", "blake2b"))
        if not isinstance(length, int) or length < 0:
            raise TransportError("put needs an integer length")  # cannot even drain: fatal
        remaining = length  # bytes of payload still in the stream: drained on any error
        try:
            if not (isinstance(offset, int) and isinstance(size, int) and offset >= 0 and size >= 0
                    and isinstance(want, str)):
                raise TransportError("put needs integer offset/size and a blake2b")
            p = self._writable(req)
            ensure_dir(p.parent)
            part = p.with_name(p.name + PART_SUFFIX)
            have = part.stat().st_size if part.exists() else 0
            if offset != have and offset != 0:
                raise TransportError(f"{p.name}: resume offset {offset} but {have} bytes are there")
            with open_private(part, truncate=not offset) as f:
                f.seek(offset)
                f.truncate()
                while remaining:
                    chunk = r.read(min(CHUNK, remaining))
                    if not chunk:
                        raise EOFError("stream ended inside a put")
                    remaining -= len(chunk)  # consumed from the stream, whether or not it lands
                    f.write(chunk)
                    crash_point("agent.put_chunk")  # the agent dies inside a put
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            self._drain(r, remaining)
            raise
        done = offset + length
        if done < size:
            return {"complete": False, "have": done}, b""
        if done > size or file_hash(part) != want:
            part.unlink()
            return {"complete": False, "have": 0, "corrupt": True}, b""
        try:
            os.replace(part, p)
        except OSError:
            part.unlink()  # e.g. a directory of that name: a retry would fail the same way
            raise
        fsync_dir(p.parent)
        return {"complete": True, "have": done}, b""

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


    def op_restore(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        """Run one restore pass now (the primary asks right after shipping a set)."""
        from drsync.standby.restore import run_restore

        result = run_restore(agent_settings(self.config, self.roots["metadata"]))
        return {"applied": result.applied, "message": result.message, "exit_code": result.exit_code}, b""

    def op_fingerprint(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        """This side's fingerprint of one table at one version, for `drsync verify`."""
        from drsync.standby.verify import fingerprint

        if self.warehouse is None:
            raise TransportError("this agent was started without --warehouse-root: it cannot verify tables")
        name, version, also = req.get("table"), req.get("version"), req.get("also_hash", [])
        if not (isinstance(name, str) and name.count(".") == 2 and isinstance(version, int)
                and isinstance(also, list) and all(isinstance(a, str) for a in also)):
            raise TransportError("fingerprint: bad arguments")
        table_dir = self.warehouse / safe_relpath(name.replace(".", "/"), table=name, where="table name")
        also = [safe_relpath(a, table=name, where="file path") for a in also]
        fp = fingerprint(table_dir, name, version, bool(req.get("deep")), also)
        return {"fingerprint": fp.model_dump(mode="json")}, b""

    def op_promote(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        """Switchover over SSH: this standby becomes the primary (roles/swap.py)."""
        return agent_promote(self.config, self.roots["metadata"], req), b""

    def op_reprotectinfo(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        return reprotect_info(self.config, self.roots["metadata"]), b""

    def op_commits(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        return table_commits(self.config, self.roots["metadata"], req), b""

    def op_reprotected(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        return reprotected(self.config, self.roots["metadata"], req), b""

    def op_independent(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        return agent_independent(self.config, self.roots, req), b""

    def op_prepare(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        """Create both roots (mode 0750) and record the cluster pair; report space and access."""
        pair = {k: req.get(k) for k in ("primary_cluster_id", "standby_cluster_id")}
        if not all(v is None or isinstance(v, str) for v in pair.values()):
            raise TransportError("prepare: cluster ids must be strings")
        check_only = bool(req.get("check_only"))
        recorded = _read_json(self.roots["metadata"] / PAIR_FILE)
        if not check_only and isinstance(recorded, dict) and recorded != pair:
            # Re-pairing is the standby administrator's decision, never a primary's word.
            raise TransportError(
                f"this standby records another pair ({recorded.get('primary_cluster_id')} / "
                f"{recorded.get('standby_cluster_id')}) in {self.roots['metadata'] / PAIR_FILE}",
                hint="to re-pair deliberately, remove that file on the standby, then run drsync prepare")
        if not check_only:  # --check changes nothing on this host either
            for root in self.roots.values():
                ensure_dir(root, mode=0o750)
            atomic_write_bytes(self.roots["metadata"] / PAIR_FILE,
                               json.dumps(pair, indent=2).encode() + b"\n")
        out: dict[str, Any] = {"pair": _read_json(self.roots["metadata"] / PAIR_FILE)}
        for area, root in self.roots.items():
            probe = root
            while not probe.exists():
                probe = probe.parent
            usage = shutil.disk_usage(probe)
            out[area] = {"free": usage.free, "total": usage.total, "exists": root.exists(),
                         "writable": os.access(probe, os.W_OK)}
        return out, b""

    def op_probe(self, req: dict[str, Any], r: BinaryIO) -> tuple[dict[str, Any], bytes]:
        """Connect from here back to the primary (strict host keys, key only) and run
        `<command> version` there: proves the standby->primary direction of the pair.

        Every parameter comes from this agent's own --config, never from the request: a
        caller choosing host, key and command would use this host's keys against any host."""
        import getpass

        s = agent_settings(self.config, self.roots["metadata"])
        if not s.primary_host_ip or s.ssh_key_file is None or s.known_hosts_file is None:
            raise TransportError(f"probe: {s.source_file} on the standby needs primary-host-ip, "
                                 "ssh-key-file and known-hosts-file")
        return {"version": probe_version(s.primary_host_ip, s.ssh_port, s.username or getpass.getuser(),
                                         s.ssh_key_file, s.known_hosts_file,
                                         list(s.remote_drsync_command))}, b""


PAIR_FILE = "pair.json"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def probe_version(host: str, port: int, user: str, key: Path, known: Path, command: list[str]) -> str:
    """Log in to host strictly (key only, known host keys only) and return `drsync version`."""
    import shlex

    import paramiko

    from drsync.config.private import check_private_file

    check_private_file(key, "ssh-key-file")
    client = paramiko.SSHClient()
    try:
        client.load_host_keys(str(known))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(host, port=port, username=user, key_filename=str(key), allow_agent=False,
                       look_for_keys=False, timeout=15, banner_timeout=15, auth_timeout=15)
        _, stdout, stderr = client.exec_command(" ".join(shlex.quote(w) for w in [*command, "version"]),
                                                timeout=60)
        version = stdout.read().decode().strip()
        if stdout.channel.recv_exit_status() != 0:
            raise TransportError(f"{user}@{host}:{port} ran {command[0]} version and it failed: "
                                 f"{stderr.read().decode(errors='replace').strip()[-300:]}")
        return version
    except (OSError, paramiko.SSHException) as e:
        raise TransportError(f"from this host to {user}@{host}:{port}: {type(e).__name__}: {e}") from None
    finally:
        client.close()


def run_agent(media_root: Path, metadata_root: Path, config: Path | None = None,
              warehouse_root: Path | None = None) -> int:
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
        Agent(media_root, metadata_root, config, warehouse_root).serve(r, w)
    except (EOFError, BrokenPipeError):
        return 0  # the primary went away: nothing half-renamed, .part files stay for resume
    except TransportError as e:
        print(f"drsync agent: {e.message}", file=sys.stderr)
        return 1
    return 0
