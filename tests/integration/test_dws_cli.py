"""The DWS tool's command lines, exactly as docs/dws-migration.md writes them, through the real
CLI (issue 16, item 1), and `show-progress --format dws` (item 5)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from drsync.cli.dws import COMMANDS
from drsync.site.state import SideProgress
from tests.helpers import REPO, Sites, drsync

DOC = REPO / "docs" / "dws-migration.md"


def documented_lines() -> list[list[str]]:
    """Every `drsync -t ...` line of the doc's first sh block."""
    block = re.search(r"```sh\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None
    return [shlex.split(line) for line in block.group(1).splitlines() if line.startswith("drsync -t ")]


def test_every_documented_command_line_runs_as_written(sites: Sites) -> None:
    lines = documented_lines()
    assert {line[2] for line in lines} == set(COMMANDS)  # every DWS command is in the doc
    for name in ("t1", "t2"):
        write_deltalake(str(sites.primary / "db" / "s" / name), pa.table({"id": [1, 2, 3]}))
    (sites.base / "pub.list").write_text("# the publication of the test sites\n*.all\n")
    (sites.base / "objects.list").write_text("db.s.t1\n")
    ran: dict[str, str] = {}
    for line in lines:
        args = [a.replace("/opt/dr", str(sites.base)) for a in line[1:]]
        r = drsync(*args)
        assert r.returncode == 0, (line, r.stdout, r.stderr)
        ran[" ".join(line[1:3])] = r.stdout
        if line[2] == "restore":
            assert (sites.standby / "db" / "s" / "t2" / "_delta_log").is_dir()
        if line[2] == "show-progress":
            doc = json.loads(r.stdout)
            assert list(doc) == ["primary cluster", "standby cluster", "apply", "latestBarrierTime",
                                 "recovery point objective", "failover recovery point time"]
            assert list(doc["primary cluster"]) == list(SideProgress.model_fields)
            assert doc["primary cluster"]["errorMsg"] == "Success"
            assert doc["primary cluster"]["unrestoreKeys"] == "N/A"
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", doc["apply"]["backupSuccessTime"])
    assert "pair ready" in ran["-t prepare"]
    assert "made 2 replicated table(s) writable" in ran["-t set-independent"]


def test_unknown_commands_and_options_are_one_clear_line(sites: Sites) -> None:
    cfg = str(sites.config)
    r = drsync("-t", "switch-everything", "--config-file", cfg)
    assert r.returncode == 2 and r.stderr.startswith("error: -t switch-everything: not a DWS command")
    assert len(r.stderr.splitlines()) == 2 and "Traceback" not in r.stderr
    r = drsync("-t", "restore", "--config-file", cfg, "--publication-list", "/x")
    assert r.returncode == 2 and "unknown option --publication-list" in r.stderr
    r = drsync("-t", "prepare", "--config-file", cfg, "--local-dn-num", "three", "--remote-dn-num", "3")
    assert r.returncode == 2 and "--local-dn-num three" in r.stderr
    r = drsync("-t", "backup", "--disaster-fine-grained")
    assert r.returncode == 2 and "needs --config-file" in r.stderr


def test_progress_dws_format_against_the_default(sites: Sites) -> None:
    write_deltalake(str(sites.primary / "db" / "s" / "t"), pa.table({"id": [1]}))
    drsync("backup", "-c", str(sites.config), check=True)  # shipped, not restored
    dws = json.loads(drsync("show-progress", "-c", str(sites.config), "--format", "dws", check=True).stdout)
    full = json.loads(drsync("show-progress", "-c", str(sites.config), "--format", "json", check=True).stdout)
    assert "role epoch" in full and "role epoch" not in dws
    key = full["primary cluster"]["key"]
    assert full["primary cluster"]["unrestoreKeys"] == key == dws["standby cluster"]["unrestoreKeys"]
    assert dws["primary cluster"]["unrestoreKeys"] == "N/A"
    assert dws["standby cluster"]["errorMsg"] == ""  # no action on the standby yet
    assert full["primary cluster"]["errorMsg"] == ""


def test_config_path_from_a_dws_line_keeps_spaces(tmp_path: Path) -> None:
    from drsync.cli.dws import translate

    assert translate(["-t", "backup", "--config-file=/a b/c.ini", "--disaster-fine-grained"]) == [
        "backup", "-c", "/a b/c.ini"]
    assert translate(["backup", "-c", "x"]) == ["backup", "-c", "x"]  # drsync's own form unchanged
