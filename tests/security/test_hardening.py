"""Findings 7 and 9 of issue 15: the standby->primary key line, private key and token files,
private scratch files whatever the umask, DuckDB without unsigned extensions, /status."""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from drsync.api.app import create_app
from drsync.config import Settings, load_settings, parse_settings_text
from drsync.errors import ConfigError
from drsync.site.layout import DRSYNC_DIR
from drsync.tableformat.delta.reader import connect
from drsync.transport.ssh import SshTransport, agent_command
from tests.helpers import drsync, make_sites
from tests.security.attack import write_table
from tests.unit.api.test_app import TOKEN, FakeDaemon


def _ssh_settings(tmp_path: Path, key: Path) -> Settings:
    return parse_settings_text(f"""transport=ssh
primary-warehouse={tmp_path}/p/w
standby-warehouse={tmp_path}/s/w
primary-media-destination={tmp_path}/p/media
primary-metadata-destination={tmp_path}/p/meta
restore-media-destination={tmp_path}/s/media
restore-metadata-destination={tmp_path}/s/meta
primary-host-ip=10.0.0.1
restore-host-ip=10.0.0.2
username=drsync
ssh-port=1
ssh-key-file={key}
known-hosts-file={tmp_path}/known_hosts
""", str(tmp_path / "cfg.ini"))


def test_the_standby_key_line_is_pinned_to_the_agent(tmp_path: Path) -> None:
    """Finding 7: the hint for the standby->primary key had `restrict` but no `command=`: a
    compromised standby got a shell on the primary."""
    from drsync.site.pairing import standby_key_line

    s = _ssh_settings(tmp_path, tmp_path / "id")
    line = standby_key_line(s, "ssh-ed25519 AAAA standby")
    options, public = line.split("restrict ", 1)
    assert public == "ssh-ed25519 AAAA standby"
    assert options.startswith('command="') and options.endswith(',from="10.0.0.2",')
    command = options[len('command="'):options.index('",from=')]
    assert shlex.split(command) == shlex.split(agent_command(s, "primary"))


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    """Finding 9: ssh-key-file readable by group or others was used (ssh itself refuses it)."""
    key = tmp_path / "id"
    key.write_text("private")
    key.chmod(mode)
    with pytest.raises(ConfigError) as e:
        SshTransport(_ssh_settings(tmp_path, key))
    assert str(key) in e.value.message and e.value.hint == f"chmod 600 {key}"


def test_an_api_token_readable_by_others_disables_the_api(tmp_path: Path) -> None:
    """Finding 9: api-token-file readable by group or others was accepted."""
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o644)
    sites = make_sites(tmp_path / "sites", extra=f"api-token-file={token}")
    client = TestClient(create_app(FakeDaemon(load_settings(sites.config))))
    r = client.post("/stop-backup", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 403 and f"chmod 600 {token}" in r.json()["detail"], r.text
    token.chmod(0o600)
    assert client.post("/stop-backup", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 202


def test_status_shows_no_config_path_without_the_token(tmp_path: Path) -> None:
    """Finding 9: /status told any caller where the config (and so the key) lives."""
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    sites = make_sites(tmp_path / "sites", extra=f"api-token-file={token}")
    view = FakeDaemon(load_settings(sites.config))
    client = TestClient(create_app(view))
    anonymous = client.get("/status").json()
    assert anonymous["config"] == ""
    authed = client.get("/status", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert authed["config"] == view.status()["config"] != ""


def test_duckdb_loads_no_unsigned_extension() -> None:
    """Finding 9: DuckDB was opened with allow_unsigned_extensions (the delta build is signed)."""
    con = connect()
    assert con.execute("SELECT current_setting('allow_unsigned_extensions')").fetchone() == (False,)


def test_scratch_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    """Finding 9: staging directories and files (and bundles) took their mode from the umask."""
    sites = make_sites(tmp_path / "sites")
    write_table(sites.primary, "db.s.t", [1, 2, 3])
    old = os.umask(0)
    try:
        drsync("backup", "-c", str(sites.config), check=True)
        # Killed right after the set verified: the staging copy is there to look at.
        r = drsync("restore", "-c", str(sites.config), env={"DRSYNC_CRASH_AT": "restore.verified:1"})
    finally:
        os.umask(old)
    assert r.returncode != 0
    staging = sites.standby / DRSYNC_DIR / "staging"
    dirs = [p for p in staging.rglob("*") if p.is_dir()] + [staging]
    files = [p for p in staging.rglob("*") if p.is_file()]
    bundles = list(sites.primary_media.rglob("*.tar*")) + list(sites.standby_media.rglob("*.tar*"))
    assert files and bundles
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in dirs} == {"0o750"}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files + bundles} == {"0o640"}
