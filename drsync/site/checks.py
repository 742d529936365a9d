"""`drsync check`: small named checks of a site pair, each with a hint when it fails.

Barman's model: a list of small check functions run in order, one result each (OK, FAILED or
SKIPPED with the reason), and one formatter printing them as text or JSON for monitoring. It
runs on the primary and changes nothing on either host. With transport=local the SSH checks
are skipped, not failed. A check that depends on an earlier one that failed (no SSH login:
no remote disk space) is skipped and says which one.

The SSH hints and the cluster-pair helpers are in pairing.py, shared with `drsync prepare`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from drsync.config import Role, Settings
from drsync.errors import ConfigError, DrsyncError
from drsync.site.locks import lock_holder, read_lock_pid
from drsync.site.pairing import (
    gib,
    host_of,
    keyscan_hint,
    me,
    nearest_existing,
    pair_mismatch,
    parse_pair,
    probe_primary,
    read_local_pair,
    space_threshold,
    ssh_failure,
    user_of,
    wanted_pair,
)
from drsync.site.state import LOCK_DIR
from drsync.transport.agent import PAIR_FILE
from drsync.transport.ssh import SshTransport

Status = Literal["OK", "FAILED", "SKIPPED"]
MAX_SKEW = 5.0  # seconds
SSH_STAGES = ("ssh_reachable", "host_key", "ssh_login", "remote_version")


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    hint: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "FAILED"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class Skip(Exception):
    """The check does not apply here, or an earlier check it needs failed."""


# ---------------------------------------------------------------- the checks


class _Context:
    def __init__(self, settings: Settings) -> None:
        self.s = settings.model_copy(update={"check_balance_retry_times": 0})  # answer at once
        self.failed: set[str] = set()
        self._remote: SshTransport | None = None
        self._error: tuple[str, str, str] | None = None  # (stage, message, hint) of the login
        self._tried = False

    def open(self) -> tuple[str, str, str] | None:
        """Log in to the standby once; the failure's stage decides which SSH check reports it."""
        if not self._tried:
            self._tried = True
            try:
                self._remote = SshTransport(self.s)
            except DrsyncError as e:
                stage, message, hint = ssh_failure(self.s, e)
                # TCP answered (ssh_reachable passed): a failed handshake is reported by host_key.
                self._error = ("host_key" if stage == "ssh_reachable" else stage, message, hint)
        return self._error

    def login(self) -> tuple[str, str, str] | None:
        if self.s.transport == "local":
            raise Skip("transport=local")
        if "ssh_reachable" in self.failed:
            raise Skip("not checked: ssh_reachable failed")
        return self.open()

    def remote(self) -> SshTransport:
        error = self.login()
        if error is not None or self._remote is None:
            raise Skip(f"not checked: {error[0] if error else 'ssh'} failed")
        return self._remote

    def close(self) -> None:
        if self._remote is not None:
            self._remote.close()


CheckFn = Callable[[_Context], str]
CHECKS: list[tuple[str, CheckFn]] = []


def check(name: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        CHECKS.append((name, fn))
        return fn

    return register


@check("config")
def check_config(ctx: _Context) -> str:
    s = ctx.s
    if s.transport == "ssh":
        for key, path in (("ssh-key-file", s.ssh_key_file), ("known-hosts-file", s.known_hosts_file)):
            if path is None or not path.is_file():
                hint = (f"ssh-keygen -t ed25519 -N '' -f {path}" if key == "ssh-key-file"
                        else keyscan_hint(s, host_of(s, "standby")))
                raise DrsyncError(f"{key} {path} does not exist", hint=hint)
    return f"{s.source_file} is valid (transport={s.transport})"


@check("ssh_reachable")
def check_ssh_reachable(ctx: _Context) -> str:
    s = ctx.s
    if s.transport == "local":
        raise Skip("transport=local")
    host = host_of(s, "standby")
    try:
        with socket.create_connection((host, s.ssh_port), timeout=10) as sock:
            banner = sock.recv(256).split(b"\r\n")[0].decode(errors="replace")
    except OSError as e:
        raise DrsyncError(f"cannot reach {host}:{s.ssh_port}: {e.strerror or e}",
                          hint=f"check that sshd runs on {host} port {s.ssh_port} and the firewall allows "
                               f"it: nc -vz {host} {s.ssh_port}") from None
    if not banner.startswith("SSH-"):
        raise DrsyncError(f"{host}:{s.ssh_port} answers but is not an SSH server ({banner[:60]!r})",
                          hint="check ssh-port")
    return f"{host}:{s.ssh_port} answers: {banner}"


def _ssh_stage(ctx: _Context, stage: str, ok_detail: Callable[[], str]) -> str:
    error = ctx.login()
    if error is None or SSH_STAGES.index(error[0]) > SSH_STAGES.index(stage):
        return ok_detail()
    if error[0] == stage:
        raise DrsyncError(error[1], hint=error[2])
    raise Skip(f"not checked: {error[0]} failed")


@check("host_key")
def check_host_key(ctx: _Context) -> str:
    s = ctx.s
    return _ssh_stage(ctx, "host_key", lambda: f"{host_of(s, 'standby')}'s key matches {s.known_hosts_file}")


@check("ssh_login")
def check_ssh_login(ctx: _Context) -> str:
    s = ctx.s
    return _ssh_stage(ctx, "ssh_login", lambda: f"{user_of(s)}@{host_of(s, 'standby')}:{s.ssh_port} "
                                                f"accepted {s.ssh_key_file}")


@check("remote_version")
def check_remote_version(ctx: _Context) -> str:
    def detail() -> str:
        hello = ctx.remote().call("hello")
        return (f"the standby runs drsync {hello.get('version')} (protocol {hello.get('protocol')}), "
                "same as here")

    return _ssh_stage(ctx, "remote_version", detail)


@check("standby_to_primary")
def check_standby_to_primary(ctx: _Context) -> str:
    version = probe_primary(ctx.s, ctx.remote())
    return f"the standby logs in to {host_of(ctx.s, 'primary')} and finds drsync {version}"


@check("clock_skew")
def check_clock_skew(ctx: _Context) -> str:
    remote = ctx.remote()
    before = time.time()
    remote_time = float(remote.call("hello").get("time", 0.0))
    after = time.time()
    # The agent read its clock somewhere inside [before, after] of ours: skew beyond that window.
    skew = max(remote_time - after, before - remote_time, 0.0)
    trip = f"round trip {(after - before) * 1000:.0f} ms, limit {MAX_SKEW:.0f} s"
    if skew == 0.0:
        detail = f"the standby's clock agrees with this host's ({trip})"
    else:
        ahead = "ahead of" if remote_time > after else "behind"
        detail = f"the standby's clock is {skew:.2f} s {ahead} this host's ({trip})"
    if skew > MAX_SKEW:
        raise DrsyncError(detail, hint="keep both clocks in sync: timedatectl set-ntp true on each host")
    return detail


def _space(where: str, usage: list[tuple[Path, int, int, object]]) -> str:
    """usage: (path, free, total, filesystem id); paths on one filesystem are reported together."""
    groups: dict[object, list[tuple[Path, int, int, object]]] = {}
    for entry in usage:
        groups.setdefault(entry[3], []).append(entry)
    parts, low = [], []
    for entries in groups.values():
        names = " and ".join(str(e[0]) for e in entries)
        free, total = entries[0][1], entries[0][2]
        limit = space_threshold(total)
        parts.append(f"{names}: {gib(free)} free of {gib(total)}")
        if free < limit:
            low.append(f"{names} (needs {gib(limit)})")
    detail = f"{'; '.join(parts)} (fails below 1 GiB or 5 % of the filesystem, whichever is smaller)"
    if low:
        raise DrsyncError(f"low disk space on {where}: {detail}",
                          hint=f"free space on {where} for {', '.join(low)}; sets older than life-cycle are "
                               "removed only once restored")
    return detail


def _local_usage(paths: tuple[Path, ...]) -> list[tuple[Path, int, int, object]]:
    out: list[tuple[Path, int, int, object]] = []
    for path in paths:
        existing = nearest_existing(path)
        usage = shutil.disk_usage(existing)
        out.append((path, usage.free, usage.total, existing.stat().st_dev))
    return out


@check("primary_disk_space")
def check_primary_disk_space(ctx: _Context) -> str:
    s = ctx.s
    return _space("this host", _local_usage((s.primary_media_destination, s.primary_metadata_destination)))


@check("standby_disk_space")
def check_standby_disk_space(ctx: _Context) -> str:
    s = ctx.s
    paths = (s.restore_media_destination, s.restore_metadata_destination)
    if s.transport == "local":
        return _space("this host", _local_usage(paths))
    remote = ctx.remote()
    usage: list[tuple[Path, int, int, object]] = []
    for area, path in zip(("media", "metadata"), paths, strict=True):
        df = remote.call("df", area=area)
        free, total = int(df.get("free", 0)), int(df.get("total", 0))
        usage.append((path, free, total, (free >> 24, total)))  # same numbers: same filesystem
    return _space(host_of(s, "standby"), usage)


def _writable_here(path: Path) -> str | None:
    """What is wrong with `path` as a directory drsync writes to, or None."""
    if not path.exists():
        return f"{path} is missing"
    if not path.is_dir():
        return f"{path} is not a directory"
    if not os.access(path, os.W_OK | os.X_OK, effective_ids=True):
        return f"{path} is not writable by {me()}"
    return None


@check("directories_writable")
def check_directories_writable(ctx: _Context) -> str:
    s = ctx.s
    roles: tuple[Role, ...] = ("primary", "standby") if s.transport == "local" else ("primary",)
    local = [p for r in roles for p in (s.media_dir(r), s.metadata_dir(r))]
    problems = [p for p in map(_writable_here, local) if p]
    fix = f"drsync prepare -c {s.source_file} creates them; else chown {user_of(s)} DIR && chmod 750 DIR"
    if problems:
        raise DrsyncError("; ".join(problems), hint=fix)
    done = f"{len(local)} directories writable on this host"
    if s.transport == "local":
        return done
    try:
        remote = ctx.remote()
    except Skip as e:
        raise Skip(f"{done}; the standby's {e}") from None
    host = host_of(s, "standby")
    if remote.read_bytes("metadata", PAIR_FILE) is None:  # the agent's prepare would create its roots
        raise DrsyncError(f"{done}; the standby {host} is not prepared ({PAIR_FILE} missing)",
                          hint=f"drsync prepare -c {s.source_file}")
    reply = remote.call("prepare", check_only=True, **wanted_pair(s))
    bad = [f"{host}:{path}" for area, path in (("media", s.restore_media_destination),
                                               ("metadata", s.restore_metadata_destination))
           if not (reply.get(area) or {}).get("writable")]
    if bad:
        raise DrsyncError(f"not writable by {user_of(s)}: {', '.join(bad)}",
                          hint=f"on {host}: chown {user_of(s)} DIR && chmod 750 DIR")
    return f"{done}, 2 on {host}"


def _lock(lock_dir: Path, op: str) -> str:
    path = lock_dir / f"{op}.lock"
    pid = lock_holder(lock_dir, op)
    if pid is None:
        last = read_lock_pid(path)
        if last is None:
            return f"{path}: free"
        return (f"{path}: free (left by pid {last}; not stale: an flock dies with its process, "
                "so the next run takes it)")
    if pid > 0:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise DrsyncError(f"{path} is held, but its recorded pid {pid} is gone (a child process "
                              "inherited the lock?)", hint=f"find the holder: fuser -v {path}") from None
        except PermissionError:
            pass  # alive, another user's
        return f"{path}: held by live pid {pid} (a {op} is running)"
    return f"{path}: held by a live process that did not record its pid"


@check("backup_lock")
def check_backup_lock(ctx: _Context) -> str:
    return _lock(ctx.s.primary_metadata_destination / LOCK_DIR, "backup")


@check("restore_lock")
def check_restore_lock(ctx: _Context) -> str:
    if ctx.s.transport == "ssh":
        raise Skip(f"the restore lock is on the standby {host_of(ctx.s, 'standby')}; the agent cannot "
                   "query locks")
    return _lock(ctx.s.restore_metadata_destination / LOCK_DIR, "restore")


@check("pair_recorded")
def check_pair_recorded(ctx: _Context) -> str:
    s = ctx.s
    want, cfg = wanted_pair(s), s.source_file
    if None in want.values():
        raise DrsyncError(f"{cfg}: primary-cluster-id and standby-cluster-id are not set",
                          hint=f"set both in {cfg} on both sites, then drsync prepare -c {cfg}")
    roles: tuple[Role, ...] = ("primary", "standby") if s.transport == "local" else ("primary",)
    sides = [(str(s.metadata_dir(r) / PAIR_FILE), read_local_pair(s.metadata_dir(r))) for r in roles]
    for where, pair in sides:
        if pair is not None and pair != want:
            raise pair_mismatch(s, where, pair)
    if s.transport == "ssh":
        where = f"{host_of(s, 'standby')}:{s.restore_metadata_destination / PAIR_FILE}"
        pair = parse_pair(ctx.remote().read_bytes("metadata", PAIR_FILE))
        if pair is not None and pair != want:
            raise pair_mismatch(s, where, pair)
        sides.append((where, pair))
    missing = [where for where, pair in sides if pair is None]
    if missing:
        raise DrsyncError(f"the cluster pair is not recorded in {', '.join(missing)}",
                          hint=f"drsync prepare -c {cfg}")
    return f"primary {want['primary_cluster_id']} / standby {want['standby_cluster_id']} on both sides"


# ---------------------------------------------------------------- running and printing


def run_checks(settings: Settings) -> list[CheckResult]:
    """Every check, in order; never raises for a failed check (that is a FAILED result)."""
    ctx = _Context(settings)
    results = []
    try:
        for name, fn in CHECKS:
            try:
                results.append(CheckResult(name, "OK", fn(ctx)))
            except Skip as e:
                results.append(CheckResult(name, "SKIPPED", str(e)))
            except DrsyncError as e:
                results.append(CheckResult(name, "FAILED", e.message, e.hint))
            except OSError as e:
                where = f" ({e.filename})" if e.filename else ""
                results.append(CheckResult(name, "FAILED", f"{e.strerror or e}{where}",
                                           "check ownership and permissions of that path"))
            except Exception as e:  # a bug in a check must not hide the others
                results.append(CheckResult(name, "FAILED", f"internal error: {type(e).__name__}: {e}",
                                           "report it with the output of drsync check --format json"))
            if results[-1].status == "FAILED":
                ctx.failed.add(name)
    finally:
        ctx.close()
    return results


def config_failure(error: ConfigError) -> list[CheckResult]:
    """The result list for a configuration that does not load (the CLI then exits 2)."""
    return [CheckResult("config", "FAILED", error.message, error.hint)]


def format_checks(results: list[CheckResult], fmt: Literal["text", "json"] = "text") -> str:
    if fmt == "json":
        return json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False)
    lines = []
    for r in results:
        lines.append(f"{r.name}: {r.status} — {r.detail}")
        if r.hint and r.status == "FAILED":
            lines.append(f"  hint: {r.hint}")
    return "\n".join(lines)
