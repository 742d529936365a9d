"""What `drsync check` and `drsync prepare` share: who logs in where, the authorized_keys line,
SSH failures turned into a stage + message + hint, the recorded cluster pair, disk thresholds."""

from __future__ import annotations

import getpass
import json
import os
import pwd
import shlex
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from drsync import __version__
from drsync.config import Settings
from drsync.errors import AuthError, ConfigError, DrsyncError, HostKeyError, TransportError
from drsync.fsutil import atomic_write_bytes, ensure_dir
from drsync.site.layout import PAIR_FILE

if TYPE_CHECKING:  # paramiko is slow to load and the agent (which imports this) never needs it
    from drsync.transport.ssh import Peer


class OtherSite(Protocol):
    """The other site as `probe_primary` needs it (a `drsync.peer.Peer`)."""

    def probe_back(self) -> str: ...

GIB = 1 << 30


def user_of(settings: Settings) -> str:
    return settings.username or getpass.getuser()


def me() -> str:
    """The user this process acts as (its effective uid)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def host_of(settings: Settings, peer: Peer) -> str:
    return (settings.restore_host_ip if peer == "standby" else settings.primary_host_ip) or "?"


def authorized_keys_line(settings: Settings, peer: Peer = "standby") -> str | None:
    """`command="<agent>",restrict <public key>` for ~user/.ssh/authorized_keys on `peer`."""
    if settings.ssh_key_file is None:
        return None
    try:
        public = Path(f"{settings.ssh_key_file}.pub").read_text().strip()
    except OSError:
        return None
    from drsync.transport.ssh import agent_command

    command = agent_command(settings, peer).replace("\\", "\\\\").replace('"', '\\"')
    return f'command="{command}",restrict {public}'


def standby_key_line(settings: Settings, public: str) -> str:
    """The primary's authorized_keys line for the standby's key: pinned to the primary's agent
    (a compromised standby gets no shell there) and, with from=, usable from the standby only."""
    from drsync.transport.ssh import agent_command

    command = agent_command(settings, "primary").replace("\\", "\\\\").replace('"', '\\"')
    source = settings.restore_host_ip
    origin = f'from="{source}",' if source else ""
    return f'command="{command}",{origin}restrict {public}'


def keyscan_hint(settings: Settings, host: str) -> str:
    known = shlex.quote(str(settings.known_hosts_file))
    return (f"ssh-keyscan -p {settings.ssh_port} {host} >> {known}  (then check that `ssh-keygen -lf "
            f"{known}` shows the fingerprint the host's administrator reads there with ssh-keygen -lf "
            "/etc/ssh/ssh_host_ed25519_key.pub)")


def ssh_failure(settings: Settings, e: DrsyncError) -> tuple[str, str, str]:
    """(stage, message, hint) of a failure to open the SSH peer (the standby). Stages:
    ssh_reachable, host_key, ssh_login, remote_version."""
    host, port, known = host_of(settings, "standby"), settings.ssh_port, settings.known_hosts_file
    if isinstance(e, HostKeyError):
        if "CHANGED" in e.message:
            name = host if port == 22 else f"[{host}]:{port}"
            return "host_key", e.message, (
                f"only if {host} was legitimately re-installed: ssh-keygen -R '{name}' -f {known} && "
                + keyscan_hint(settings, host))
        return "host_key", e.message, keyscan_hint(settings, host)
    if isinstance(e, AuthError):
        line = authorized_keys_line(settings)
        if line is None:
            return "ssh_login", e.message, (f"ssh-keygen -y -f {settings.ssh_key_file} > "
                                            f"{settings.ssh_key_file}.pub, then run drsync prepare for "
                                            "the authorized_keys line")
        return "ssh_login", e.message, (f"add this line to ~{user_of(settings)}/.ssh/authorized_keys on "
                                        f"{host}: {line}")
    if isinstance(e, ConfigError):
        return "config", e.message, e.hint
    if "cannot connect" in e.message:
        return "ssh_reachable", e.message, (f"check that sshd listens on {host}:{port} and the firewall "
                                            f"allows it: ssh -i {settings.ssh_key_file} -p {port} "
                                            f"{user_of(settings)}@{host} true")
    command = " ".join(shlex.quote(w) for w in settings.remote_drsync_command)
    return "remote_version", e.message, (
        f"install drsync {__version__} on {host} and check remote-drsync-command: ssh -i "
        f"{settings.ssh_key_file} -p {port} {user_of(settings)}@{host} {command} version "
        f"must print {__version__}")


def probe_primary(settings: Settings, remote: OtherSite) -> str:
    """Make the standby's agent log in to the primary; raises DrsyncError with a hint."""
    primary = host_of(settings, "primary")
    try:
        # The standby's agent takes host, user, key and command from its own --config.
        version = remote.probe_back()
    except DrsyncError as e:
        standby = host_of(settings, "standby")
        if "without --config" in e.message:
            hint = ("set remote-config-file (the standby's backupRestore.ini) in "
                    f"{settings.source_file}: the standby logs in to the primary with its own settings")
        elif "known_hosts" in e.message or "BadHostKey" in e.message:
            hint = f"on the standby ({standby}): {keyscan_hint(settings, primary)}"
        elif "Timeout" in e.message:
            hint = (f"check that the standby ({standby}) reaches {primary}:{settings.ssh_port}; if the "
                    f"primary's authorized_keys pins a command= for this key, `drsync version` cannot run "
                    "there")
        elif "Authentication" in e.message:
            pub = Path(f"{settings.ssh_key_file}.pub")
            key = pub.read_text().strip() if pub.exists() else f"<contents of {pub} on {standby}>"
            hint = (f"add this line to ~{user_of(settings)}/.ssh/authorized_keys on {primary}: "
                    f"{standby_key_line(settings, key)}")
        else:
            hint = f"check that the standby ({standby}) reaches {primary}:{settings.ssh_port} over SSH"
        raise DrsyncError(f"standby->primary: {e.message}", hint=hint) from None
    if version != __version__:
        raise DrsyncError(f"the primary {primary} runs drsync {version!r} for the standby's login, "
                          f"this process is {__version__}", hint=f"install drsync {__version__} there")
    return version


def wanted_pair(settings: Settings) -> dict[str, str | None]:
    return {"primary_cluster_id": str(settings.primary_cluster_id) if settings.primary_cluster_id else None,
            "standby_cluster_id": str(settings.standby_cluster_id) if settings.standby_cluster_id else None}


def parse_pair(raw: bytes | None) -> dict[str, Any] | None:
    """pair.json's content; None if absent; {"unreadable": ...} if it is not a JSON object."""
    if raw is None:
        return None
    try:
        pair = json.loads(raw)
    except ValueError as e:
        return {"unreadable": str(e)}
    return pair if isinstance(pair, dict) else {"unreadable": "not a JSON object"}


def read_local_pair(metadata_dir: Path) -> dict[str, Any] | None:
    try:
        return parse_pair((metadata_dir / PAIR_FILE).read_bytes())
    except FileNotFoundError:
        return None


def pair_mismatch(settings: Settings, where: str, pair: dict[str, Any]) -> DrsyncError:
    want = wanted_pair(settings)
    if "unreadable" in pair:
        return DrsyncError(f"{where} is unreadable ({pair['unreadable']})",
                           hint=f"remove it and run drsync prepare -c {settings.source_file}")
    return DrsyncError(
        f"{where} records primary {pair.get('primary_cluster_id')} / standby "
        f"{pair.get('standby_cluster_id')}, {settings.source_file} says {want['primary_cluster_id']} "
        f"/ {want['standby_cluster_id']}: that site belongs to another pair",
        hint=f"if the cluster ids in {settings.source_file} are wrong, fix them; if that site was "
             f"deliberately re-paired, remove {where} and run drsync prepare -c {settings.source_file}")


def space_threshold(total: int) -> int:
    """Free space below this fails: 1 GiB, or 5 % of a filesystem smaller than 20 GiB."""
    return min(GIB, total // 20)


def gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


def nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def prepare_roots(roots: dict[str, Path], pair: dict[str, str | None], check_only: bool) -> dict[str, Any]:
    """A site's side of prepare: create its roots (mode 0750) and record the cluster pair, then
    report the pair recorded there and each root's space and access. `check_only` changes nothing."""
    recorded = _read_pair(roots["metadata"] / PAIR_FILE)
    if not check_only and isinstance(recorded, dict) and recorded != pair:
        # Re-pairing is the standby administrator's decision, never a primary's word.
        raise TransportError(
            f"this site records another pair ({recorded.get('primary_cluster_id')} / "
            f"{recorded.get('standby_cluster_id')}) in {roots['metadata'] / PAIR_FILE}",
            hint="to re-pair deliberately, remove that file on this site, then run drsync prepare")
    if not check_only:
        for root in roots.values():
            ensure_dir(root, mode=0o750)
        atomic_write_bytes(roots["metadata"] / PAIR_FILE, json.dumps(pair, indent=2).encode() + b"\n")
        recorded = _read_pair(roots["metadata"] / PAIR_FILE)
    out: dict[str, Any] = {"pair": recorded}
    for area, root in roots.items():
        probe = nearest_existing(root)
        usage = shutil.disk_usage(probe)
        out[area] = {"free": usage.free, "total": usage.total, "exists": root.exists(),
                     "writable": os.access(probe, os.W_OK)}
    return out


def _read_pair(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None
