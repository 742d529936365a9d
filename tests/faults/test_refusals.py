"""Refusals: inputs drsync must not act on. Each is refused with one line naming what was
refused, exit 1, and nothing of the set applied.

* a replicated table changed locally on the standby (moved from integration/test_bad_input.py);
* a manifest in the standby's inbox with a `..` or absolute path (file, deletion, table name,
  bundle name) or naming another cluster pair;
* an unknown SSH host key (moved from integration/test_ssh.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from drsync.demo import create_sample_warehouse, table_dir
from drsync.fsutil import RW_DIR, RW_FILE, set_tree_mode
from drsync.site.state import MANIFEST_DIR
from tests.faults.conftest import Reliability
from tests.faults.test_kill import _clone
from tests.helpers import Sites, drsync, make_sites
from tests.integration.test_bad_input import _first_round, _one_line_error, _tree_digest
from tests.integration.test_ssh import ssh_sites
from tests.sshd import SshServer


def test_standby_table_changed_locally_is_refused_by_name(sites: Sites, reliability: Reliability) -> None:
    rel = reliability("standby table modified locally", "a row appended to a replicated standby table "
                      "with deltalake after making it writable, then restore")
    _first_round(sites)
    with rel.trial():
        t = table_dir(sites.standby, "hr.people.employees")
        set_tree_mode(t, RW_DIR, RW_FILE)  # what a careless root would do
        write_deltalake(str(t), pa.table({"id": pa.array([-1], pa.int64()), "amount": [0.0],
                                          "note": ["local"]}), mode="append")
        before = _tree_digest(sites.standby)
        p = drsync("restore", "-c", str(sites.config))
        assert p.returncode == 1
        line = _one_line_error(p)
        assert "hr.people.employees" in line and "changed locally" in line
        assert _tree_digest(sites.standby) == before, "nothing of the set may be applied"


Tamper = Callable[[dict[str, Any]], str]  # edits a manifest in place; returns what the error names


def _file_path(path: str) -> Tamper:
    def edit(m: dict[str, Any]) -> str:
        m["tables"][0]["files"][0]["path"] = path
        return path
    return edit


def _deletion(path: str) -> Tamper:
    def edit(m: dict[str, Any]) -> str:
        m["tables"][0]["deletions"].append(path)
        return path
    return edit


def _table_name(name: str) -> Tamper:
    def edit(m: dict[str, Any]) -> str:
        m["tables"][0]["name"] = name
        return name
    return edit


def _bundle_name(name: str) -> Tamper:
    def edit(m: dict[str, Any]) -> str:
        old = m["bundles"][0]["name"]
        m["bundles"][0]["name"] = name
        for t in m["tables"]:
            for f in t["files"]:
                if f["bundle"] == old:
                    f["bundle"] = name
        return name
    return edit


def _cluster(field: str) -> Tamper:
    def edit(m: dict[str, Any]) -> str:
        m[field] = str(uuid.uuid4())
        return field.replace("_", "-")
    return edit


TAMPERS: dict[str, Tamper] = {
    "file-dotdot": _file_path("../../../../escape.parquet"),
    "file-absolute": _file_path("/tmp/drsync-escape.parquet"),
    "file-dotdot-inside": _file_path("part/../../other/x.parquet"),
    "deletion-dotdot": _deletion("../../people/departments/_delta_log/00000000000000000000.json"),
    "deletion-absolute": _deletion("/etc/hostname"),
    "table-dotdot": _table_name("...hr"),
    "table-absolute": _table_name("/etc.people.employees"),
    "bundle-dotdot": _bundle_name("../../escape.tar.zst"),
    "bundle-absolute": _bundle_name("/tmp/escape.tar.zst"),
    "foreign-primary-cluster": _cluster("primary_cluster_id"),
    "foreign-standby-cluster": _cluster("standby_cluster_id"),
}


@pytest.fixture(scope="module")
def one_pending(tmp_path_factory: pytest.TempPathFactory) -> Sites:
    """Sites after one restored round, with one more set in the standby's inbox."""
    sites = make_sites(tmp_path_factory.mktemp("refusals") / "sites")
    _first_round(sites)
    return sites


@pytest.mark.parametrize("case", list(TAMPERS))
def test_tampered_manifest_is_refused_by_name(one_pending: Sites, tmp_path: Path, case: str,
                                              reliability: Reliability) -> None:
    rel = reliability("manifest with ../absolute paths or a foreign cluster id",
                      "the pending manifest in the standby's inbox edited (file, deletion, table and "
                      "bundle names; primary/standby cluster id), then restore")
    sites = _clone(one_pending, tmp_path / "sites")
    with rel.trial():
        newest = sorted((sites.standby_meta / MANIFEST_DIR).glob("*.manifest.json"))[-1]
        m = json.loads(newest.read_text())
        named = TAMPERS[case](m)
        newest.write_text(json.dumps(m))
        # Only drsync's own bookkeeping (state, progress, history) may change, never a table.
        before = [_tree_digest(d) for d in (sites.standby, sites.primary, sites.base / "primary")]
        p = drsync("restore", "-c", str(sites.config))
        assert p.returncode == 1, p.stdout + p.stderr
        line = _one_line_error(p)
        assert named in line and newest.name.split(".")[0] in line, line
        assert [_tree_digest(d) for d in (sites.standby, sites.primary, sites.base / "primary")] == before
        assert not Path("/tmp/drsync-escape.parquet").exists() and not Path("/tmp/escape.tar.zst").exists()
        assert not list(sites.base.rglob("escape*")), "a file was written outside its table"


def test_unknown_host_key_is_refused_naming_host_and_fingerprint(sshd: SshServer, tmp_path: Path,
                                                                 reliability: Reliability) -> None:
    rel = reliability("unknown SSH host key", "an empty known_hosts file for a real sshd, then backup")
    with rel.trial():
        empty = tmp_path / "known_hosts"
        empty.write_text("")
        sites = ssh_sites(tmp_path / "s", sshd, known_hosts=empty)
        create_sample_warehouse(sites.primary, rows=5)
        p = drsync("backup", "-c", str(sites.config))
        assert p.returncode == 1 and "Traceback" not in p.stderr
        assert "127.0.0.1" in p.stderr and sshd.host_key_fingerprint in p.stderr
        assert "ssh-keyscan" in p.stderr
        assert not any(sites.standby_media.rglob("*")) if sites.standby_media.exists() else True
