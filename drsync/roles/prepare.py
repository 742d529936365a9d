"""`drsync prepare`: make a primary/standby pair ready, or (`--check`) say what is missing.

Runs on the primary. Steps, in order; the first failing one stops the rest and its hint is the
exact command that fixes it: config, local directories, SSH primary->standby (host key, key
login), the standby's drsync version, SSH standby->primary (the mutual trust the DWS tool
requires, proved by the standby's agent logging in back), the cluster pair recorded on either
side, the standby's directories (created 0750 by its agent, pair.json written), the primary's
pair.json. `--check` changes nothing on either host: it reports what prepare would do.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drsync.config import Role, Settings
from drsync.errors import DrsyncError
from drsync.fsutil import atomic_write_bytes, ensure_dir
from drsync.site.pairing import (
    GIB,
    authorized_keys_line,
    host_of,
    keyscan_hint,
    me,
    pair_mismatch,
    parse_pair,
    probe_primary,
    read_local_pair,
    ssh_failure,
    user_of,
    wanted_pair,
)
from drsync.transport.agent import PAIR_FILE
from drsync.transport.ssh import SshTransport

SAFE_MODE = 0o750


@dataclass
class Step:
    name: str
    ok: bool
    detail: str
    hint: str = ""


@dataclass
class PrepareReport:
    check_only: bool
    steps: list[Step] = field(default_factory=list)
    authorized_keys: str | None = None  # the line that pins the agent on the standby

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "check_only": self.check_only, "steps": [asdict(s) for s in self.steps],
                "authorized_keys": self.authorized_keys}

    def text(self) -> str:
        lines = []
        for s in self.steps:
            lines.append(f"{s.name}: {'OK' if s.ok else 'FAILED'} — {s.detail}")
            lines += [f"  hint: {s.hint}"] if s.hint else []
        if self.authorized_keys:
            lines.append(f"authorized_keys line for the standby (pins the agent): {self.authorized_keys}")
        verdict = "ready" if self.ok else "NOT ready"
        lines.append(f"pair {verdict}" + (" (--check: nothing was changed)" if self.check_only else ""))
        return "\n".join(lines)


def local_dir(path: Path, create: bool, user: str) -> str:
    """Check (and create, or tighten to 0750) one directory on this host; detail or raise."""
    fix = f"install -d -m 750 -o {user} {shlex.quote(str(path))}  (as root)"
    if path.exists():
        if not path.is_dir():
            raise DrsyncError(f"{path} exists and is not a directory", hint=f"move it away, then {fix}")
        if not os.access(path, os.W_OK | os.X_OK, effective_ids=True):
            raise DrsyncError(f"{path} is not writable by {me()}",
                              hint=f"chown {user} {shlex.quote(str(path))} && chmod 750 {path}")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o027 and path.stat().st_uid == os.geteuid():
            if not create:
                return f"{path}: exists, mode {mode:o} (prepare tightens it to {mode & ~0o027:o})"
            os.chmod(path, mode & ~0o027)
            return f"{path}: exists, mode tightened {mode:o} -> {mode & ~0o027:o}"
        return f"{path}: exists, writable"
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not (parent.is_dir() and os.access(parent, os.W_OK | os.X_OK, effective_ids=True)):
        raise DrsyncError(f"{path} is missing and {me()} cannot create it in {parent}",
                          hint=fix)
    if not create:
        return f"{path}: missing, prepare creates it (mode 750)"
    ensure_dir(path, mode=SAFE_MODE)
    return f"{path}: created (mode 750)"


# ---------------------------------------------------------------- the steps


class _Prepare:
    def __init__(self, settings: Settings, check_only: bool) -> None:
        # A diagnostic answers at once: no retries with back-off on a refused probe.
        self.s = settings.model_copy(update={"check_balance_retry_times": 0})
        self.check_only = check_only
        self.remote: SshTransport | None = None
        self.connect_error: DrsyncError | None = None
        self.user = user_of(settings)
        self.pair = json.dumps(wanted_pair(settings), indent=2).encode() + b"\n"

    def config(self) -> str:
        s, cfg = self.s, self.s.source_file
        if s.primary_cluster_id is None or s.standby_cluster_id is None:
            raise DrsyncError(f"{cfg}: primary-cluster-id and standby-cluster-id must be set to record "
                              "the pair", hint=f"add to {cfg} on both sites: primary-cluster-id="
                              f"{uuid.uuid4()} and standby-cluster-id={uuid.uuid4()}")
        if s.transport == "ssh":
            key, known = s.ssh_key_file, s.known_hosts_file
            if key is None or not key.is_file():
                raise DrsyncError(f"ssh-key-file {key} does not exist",
                                  hint=f"ssh-keygen -t ed25519 -N '' -f {key}")
            if known is None or not known.is_file():
                raise DrsyncError(f"known-hosts-file {known} does not exist",
                                  hint=keyscan_hint(s, host_of(s, "standby")))
        return f"{cfg} is valid (transport={s.transport})"

    def local_dirs(self) -> str:
        roles: tuple[Role, ...] = ("primary", "standby") if self.s.transport == "local" else ("primary",)
        dirs = [d for r in roles for d in (self.s.media_dir(r), self.s.metadata_dir(r))]
        return "; ".join(local_dir(d, not self.check_only, self.user) for d in dirs)

    def ssh_primary_to_standby(self) -> str:
        s = self.s
        where = f"{self.user}@{host_of(s, 'standby')}:{s.ssh_port}"
        try:
            self.remote = SshTransport(s)
        except DrsyncError as e:
            stage, message, hint = ssh_failure(s, e)
            if stage != "remote_version":
                raise DrsyncError(message, hint=hint) from None
            self.connect_error = DrsyncError(message, hint=hint)  # logged in: reported by the next step
        return f"{where}: host key matches {s.known_hosts_file}, key {s.ssh_key_file} accepted"

    def remote_version(self) -> str:
        if self.connect_error is not None or self.remote is None:
            raise self.connect_error or DrsyncError("not connected")
        hello = self.remote.call("hello")
        return (f"the standby runs drsync {hello.get('version')} (protocol {hello.get('protocol')}, "
                f"format {hello.get('format')}), same as here")

    def ssh_standby_to_primary(self) -> str:
        assert self.remote is not None
        version = probe_primary(self.s, self.remote)
        return (f"the standby logged in to {self.user}@{host_of(self.s, 'primary')}:{self.s.ssh_port} "
                f"and found drsync {version}")

    def standby_pair(self) -> dict[str, Any] | None:
        if self.remote is None:
            return read_local_pair(self.s.restore_metadata_destination)
        return parse_pair(self.remote.read_bytes("metadata", PAIR_FILE))

    def cluster_pair(self) -> str:
        want, found = wanted_pair(self.s), []
        standby = f"{host_of(self.s, 'standby')}:{self.s.restore_metadata_destination / PAIR_FILE}"
        primary = f"{self.s.primary_metadata_destination / PAIR_FILE}"
        for where, pair in ((standby, self.standby_pair()),
                            (primary, read_local_pair(self.s.primary_metadata_destination))):
            if pair is not None and pair != want:
                raise pair_mismatch(self.s, where, pair)
            found.append(pair is not None)
        verb = "recorded on both sides" if all(found) else "to record" if self.check_only else "recording"
        return f"primary {want['primary_cluster_id']} / standby {want['standby_cluster_id']}: {verb}"

    def standby_dirs(self) -> str:
        s = self.s
        if self.remote is None:  # transport=local: its directories were made by local_directories
            return self.record(s.restore_metadata_destination)
        if self.check_only and self.standby_pair() is None:
            # The agent's prepare creates its roots even with check_only: measure, do not touch.
            free = self.remote.call("df", area="media").get("free", 0)
            return (f"not prepared yet: prepare creates {s.restore_media_destination} and "
                    f"{s.restore_metadata_destination} on {host_of(s, 'standby')} "
                    f"({free / GIB:.1f} GiB free)")
        reply = self.remote.call("prepare", check_only=self.check_only, **wanted_pair(s))
        details = []
        standby = host_of(s, "standby")
        for area, path in (("media", s.restore_media_destination),
                           ("metadata", s.restore_metadata_destination)):
            info = reply.get(area) or {}
            if not info.get("writable"):
                raise DrsyncError(f"{standby}:{path} is not writable by {self.user}",
                                  hint=f"on {standby}: chown {self.user} {path} && chmod 750 {path}")
            details.append(f"{path} ({info.get('free', 0) / GIB:.1f} GiB free)")
        if not self.check_only and reply.get("pair") != wanted_pair(s):
            raise DrsyncError(f"the standby did not record the pair: it has {reply.get('pair')}")
        return f"{host_of(s, 'standby')}: " + ", ".join(details) + (
            "" if self.check_only else f", {PAIR_FILE} written")

    def primary_pair(self) -> str:
        return self.record(self.s.primary_metadata_destination)

    def record(self, metadata_dir: Path) -> str:
        path = metadata_dir / PAIR_FILE
        if self.check_only:
            return f"{path}: {'present' if path.exists() else 'prepare writes it'}"
        atomic_write_bytes(path, self.pair)
        return f"{path}: written"


def run_prepare(settings: Settings, check_only: bool) -> PrepareReport:
    line = authorized_keys_line(settings) if settings.transport == "ssh" else None
    report = PrepareReport(check_only, authorized_keys=line)
    job = _Prepare(settings, check_only)
    steps = [("config", job.config), ("local_directories", job.local_dirs)]
    if settings.transport == "ssh":
        steps += [("ssh_primary_to_standby", job.ssh_primary_to_standby),
                  ("remote_version", job.remote_version),
                  ("ssh_standby_to_primary", job.ssh_standby_to_primary)]
    steps += [("cluster_pair", job.cluster_pair), ("standby_directories", job.standby_dirs),
              ("primary_pair", job.primary_pair)]
    try:
        for name, run in steps:
            try:
                report.steps.append(Step(name, True, run()))
            except DrsyncError as e:
                report.steps.append(Step(name, False, e.message, e.hint))
                break
            except OSError as e:
                where = f" ({e.filename})" if e.filename else ""
                report.steps.append(Step(name, False, f"{e.strerror or e}{where}",
                                         f"check ownership and permissions of {e.filename or 'the path'}"))
                break
    finally:
        if job.remote is not None:
            job.remote.close()
    return report
