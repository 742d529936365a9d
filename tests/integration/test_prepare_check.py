"""drsync prepare and drsync check against a real OpenSSH server on 127.0.0.1 and real agents.

Both "hosts" are this one, so both directions of the pair (primary->standby, and the standby's
agent logging in back to the primary) go to the same sshd, as the same user with the same key.
"""

from __future__ import annotations

import json
import stat
import sys
import uuid
from pathlib import Path

from drsync.config import Settings, load_settings
from drsync.demo import write_config
from drsync.roles.prepare import PrepareReport, run_prepare
from drsync.site.checks import format_checks, run_checks
from drsync.site.layout import PAIR_FILE
from drsync.transport.ssh import agent_command
from tests.helpers import drsync, tree
from tests.sshd import SshServer


def ssh_settings(base: Path, server: SshServer, *, key: Path | None = None, known: Path | None = None,
                 primary_host: str = "127.0.0.1") -> Settings:
    base.mkdir(parents=True, exist_ok=True)
    extra = f"""primary-host-ip={primary_host}
restore-host-ip=127.0.0.1
username={server.user}
ssh-port={server.port}
ssh-key-file={key or server.client_key}
known-hosts-file={known or server.known_hosts}
remote-drsync-command={sys.executable} -m drsync
remote-config-file={base / "backupRestore.ini"}
"""
    # No publication: prepare and check must find (and create) the metadata directories themselves.
    return load_settings(write_config(base, transport="ssh", grace="0s", extra=extra, publish_all=False))





def failed_step(report: PrepareReport) -> tuple[str, str, str]:
    assert not report.ok, report.text()
    step = report.steps[-1]
    assert not step.ok and all(s.ok for s in report.steps[:-1])
    return step.name, step.detail, step.hint


def wanted(settings: Settings) -> dict[str, str]:
    return {"primary_cluster_id": str(settings.primary_cluster_id),
            "standby_cluster_id": str(settings.standby_cluster_id)}


def test_prepare_creates_both_sides_and_records_the_pair(sshd: SshServer, tmp_path: Path) -> None:
    s = ssh_settings(tmp_path / "s", sshd)
    report = run_prepare(s, check_only=False)
    assert report.ok, report.text()
    assert [st.name for st in report.steps] == [
        "config", "local_directories", "ssh_primary_to_standby", "remote_version", "ssh_standby_to_primary",
        "cluster_pair", "standby_directories", "primary_pair"]
    for d in (s.primary_media_destination, s.primary_metadata_destination,
              s.restore_media_destination, s.restore_metadata_destination):
        assert stat.S_IMODE(d.stat().st_mode) == 0o750, d
    for meta in (s.primary_metadata_destination, s.restore_metadata_destination):
        assert json.loads((meta / PAIR_FILE).read_text()) == wanted(s)
    pub = sshd.client_key.with_suffix(".pub").read_text().strip()
    assert report.authorized_keys == f'command="{agent_command(s)}",restrict {pub}'
    assert "pair ready" in report.text()


def test_prepare_check_changes_nothing(sshd: SshServer, tmp_path: Path) -> None:
    s = ssh_settings(tmp_path / "s", sshd)
    before = tree(tmp_path)
    report = run_prepare(s, check_only=True)
    assert report.ok, report.text()
    assert "not prepared yet" in report.steps[-2].detail
    assert tree(tmp_path) == before
    # Prepared, then the config names another primary: --check says so and touches nothing.
    assert run_prepare(s, check_only=False).ok
    before = tree(tmp_path)
    again = run_prepare(s, check_only=True)
    assert again.ok and "recorded on both sides" in again.steps[5].detail, again.text()
    assert tree(tmp_path) == before
    cfg = s.source_file
    cfg.write_text(cfg.read_text().replace(str(s.primary_cluster_id), str(uuid.uuid4())))
    before = tree(tmp_path)
    name, detail, hint = failed_step(run_prepare(load_settings(cfg), check_only=True))
    assert name == "cluster_pair" and str(s.primary_cluster_id) in detail and "remove" in hint
    assert tree(tmp_path) == before


def test_unknown_host_key_names_host_and_fingerprint(sshd: SshServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    s = ssh_settings(tmp_path / "s", sshd, known=empty)
    name, detail, hint = failed_step(run_prepare(s, check_only=False))
    assert name == "ssh_primary_to_standby"
    assert "127.0.0.1" in detail and sshd.host_key_fingerprint in detail
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {empty}" in hint
    assert not s.restore_media_destination.exists()  # nothing done past the failure
    assert empty.read_text() == ""


def test_wrong_key_hints_the_authorized_keys_line(sshd: SshServer, tmp_path: Path) -> None:
    s = ssh_settings(tmp_path / "s", sshd, key=sshd.wrong_key)
    name, detail, hint = failed_step(run_prepare(s, check_only=False))
    assert name == "ssh_primary_to_standby" and "refused the key" in detail and str(sshd.wrong_key) in detail
    wrong_pub = sshd.wrong_key.with_suffix(".pub").read_text().strip()
    assert f"~{sshd.user}/.ssh/authorized_keys on 127.0.0.1" in hint
    assert f'command="{agent_command(s)}",restrict {wrong_pub}' in hint


def test_changed_host_key_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    s = ssh_settings(tmp_path / "s", sshd, known=sshd.other_known_hosts)
    name, detail, hint = failed_step(run_prepare(s, check_only=False))
    assert name == "ssh_primary_to_standby" and "CHANGED" in detail and sshd.host_key_fingerprint in detail
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}' -f {sshd.other_known_hosts}" in hint


def test_standby_to_primary_failure_names_the_direction(sshd: SshServer, tmp_path: Path) -> None:
    # known_hosts lists [127.0.0.1]:port only: the standby's login back to "localhost" is refused.
    s = ssh_settings(tmp_path / "s", sshd, primary_host="localhost")
    name, detail, hint = failed_step(run_prepare(s, check_only=False))
    assert name == "ssh_standby_to_primary" and detail.startswith("standby->primary:")
    assert "localhost" in detail
    assert f"on the standby (127.0.0.1): ssh-keyscan -p {sshd.port} localhost >>" in hint


def test_checks_all_ok_after_prepare(sshd: SshServer, tmp_path: Path) -> None:
    s = ssh_settings(tmp_path / "s", sshd)
    before = {r.name: r for r in run_checks(s)}
    assert before["pair_recorded"].status == "FAILED" and "drsync prepare" in before["pair_recorded"].hint
    assert not s.restore_media_destination.exists()  # check created nothing on the standby
    assert run_prepare(s, check_only=False).ok
    results = run_checks(s)
    statuses = {r.name: r.status for r in results}
    assert statuses.pop("restore_lock") == "SKIPPED"  # on the standby; the agent has no lock query
    assert set(statuses.values()) == {"OK"}, format_checks(results)
    by_name = {r.name: r for r in results}
    assert by_name["remote_version"].detail.startswith("the standby runs drsync ")
    assert "limit 5 s" in by_name["clock_skew"].detail


def test_checks_with_a_wrong_key_fail_with_hints(sshd: SshServer, tmp_path: Path) -> None:
    s = ssh_settings(tmp_path / "s", sshd, key=sshd.wrong_key)
    for d in (s.primary_media_destination, s.primary_metadata_destination):
        d.mkdir(parents=True, mode=0o750)
    results = {r.name: r for r in run_checks(s)}
    assert results["ssh_reachable"].status == results["host_key"].status == "OK"
    login = results["ssh_login"]
    assert login.status == "FAILED" and "refused the key" in login.detail and "authorized_keys" in login.hint
    for name in ("remote_version", "standby_to_primary", "clock_skew", "standby_disk_space", "pair_recorded"):
        assert results[name].status == "SKIPPED" and "ssh_login failed" in results[name].detail, name
    doc = json.loads(format_checks(list(results.values()), "json"))
    assert [d["name"] for d in doc if not d["ok"]] == ["ssh_login"]
    assert not any("Traceback" in d["detail"] or "internal error" in d["detail"] for d in doc)


def test_checks_unreachable_port_fails_first(sshd: SshServer, tmp_path: Path) -> None:
    s = ssh_settings(tmp_path / "s", sshd)
    closed = s.model_copy(update={"ssh_port": 1})
    results = {r.name: r for r in run_checks(closed)}
    assert results["ssh_reachable"].status == "FAILED" and "127.0.0.1:1" in results["ssh_reachable"].detail
    assert "nc -vz 127.0.0.1 1" in results["ssh_reachable"].hint
    assert results["host_key"].status == "SKIPPED"


def test_prepare_all_tables_publishes_everything(sshd: SshServer, tmp_path: Path) -> None:
    s = ssh_settings(tmp_path / "s", sshd)
    assert s.source_file is not None
    p = drsync("prepare", "--all-tables", "-c", str(s.source_file))
    assert p.returncode == 0, p.stdout + p.stderr
    pubs = json.loads((s.primary_metadata_destination / "publications.json").read_text())
    assert pubs == {"publications": [{"name": "all", "db": "*", "all_tables": True, "schemas": [],
                                      "tables": [], "excluded": []}]}
    assert drsync("prepare", "--all-tables", "-c", str(s.source_file)).returncode == 0
    again = json.loads((s.primary_metadata_destination / "publications.json").read_text())
    assert again == pubs, "a second prepare --all-tables adds nothing"
