"""The standby->primary half of the pair's mutual trust: log in from this host to the other
one, strictly (key only, known host keys only), and ask it `drsync version`."""

from __future__ import annotations

import getpass
import shlex
from pathlib import Path

import paramiko

from drsync.config import Settings
from drsync.config.private import check_private_file
from drsync.errors import TransportError


def probe_from_settings(settings: Settings) -> str:
    """Log in to the primary named in `settings` (this site's own configuration)."""
    s = settings
    if not s.primary_host_ip or s.ssh_key_file is None or s.known_hosts_file is None:
        raise TransportError(f"probe: {s.source_file} needs primary-host-ip, ssh-key-file and "
                             "known-hosts-file")
    return probe_version(s.primary_host_ip, s.ssh_port, s.username or getpass.getuser(),
                         s.ssh_key_file, s.known_hosts_file, list(s.remote_drsync_command))


def probe_version(host: str, port: int, user: str, key: Path, known: Path, command: list[str]) -> str:
    """Log in to host strictly (key only, known host keys only) and return `drsync version`."""
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
