"""The shipped systemd units: valid for systemd, hardened, and their command lines parse.

`systemd-analyze verify` checks the units when it is installed (it also checks that ExecStart
is executable, so the copies it sees name this venv's `drsync` instead of /opt/drsync/bin/drsync).
Without it the units are read with configparser. Either way every ExecStart must be a command
line drsync's CLI accepts.
"""

from __future__ import annotations

import argparse
import configparser
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from drsync.cli.main import app
from tests.helpers import REPO

UNIT_DIR = REPO / "systemd"
INSTALLED = "/opt/drsync/bin/drsync"
CONFIG = "/etc/drsync/backupRestore.ini"
UNITS = ["drsync.service", "drsync-backup.service", "drsync-backup.timer", "drsync-restore.service",
         "drsync-restore.timer", "drsync-retention.service", "drsync-retention.timer"]
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes", "User": "drsync"}


def read_unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read(UNIT_DIR / name)
    return unit


def seconds(value: str) -> int:
    units = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    return sum(int(n) * units[u or "s"] for n, u in re.findall(r"(\d+)\s*([a-z]*)", value))


def test_every_unit_is_shipped_with_its_required_keys() -> None:
    assert sorted(p.name for p in UNIT_DIR.iterdir() if p.suffix in (".service", ".timer")) == sorted(UNITS)
    daemon = read_unit("drsync.service")["Service"]
    assert daemon["ExecStart"] == f"{INSTALLED} daemon -c {CONFIG}"
    assert daemon["Restart"] == "on-failure" and daemon["RestartPreventExitStatus"] == "2"
    assert daemon["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert daemon["KillMode"] == "mixed"  # SIGTERM to the daemon alone; it coordinates the stop
    assert seconds(daemon["TimeoutStopSec"]) >= 10 * 60  # long enough for a step on a slow link
    for name in UNITS:
        unit = read_unit(name)
        assert unit["Unit"]["Description"], name
        if name.endswith(".service"):
            service = unit["Service"]
            assert {k: service.get(k) for k in HARDENING} == HARDENING, name
            assert service["ReadWritePaths"].startswith("/"), name
            assert service["ExecStart"].startswith(f"{INSTALLED} "), name
        else:
            timer = unit["Timer"]
            assert timer["Unit"] == name.replace(".timer", ".service")
            assert "drsync.service" in unit["Unit"]["Conflicts"]  # the daemon or the timers
    for op in ("backup", "restore"):
        timer = read_unit(f"drsync-{op}.timer")["Timer"]
        assert timer["OnUnitActiveSec"] == "1min" and timer["OnActiveSec"] == "1min"
        assert read_unit(f"drsync-{op}.service")["Service"]["Type"] == "oneshot"
    assert read_unit("drsync-retention.timer")["Timer"]["OnCalendar"] == "daily"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed "
                    "(the units are still checked with configparser above)")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    drsync_here = Path(sys.executable).with_name("drsync")
    assert drsync_here.exists(), "drsync is installed in the venv (pip install -e .)"
    for name in UNITS:
        text = (UNIT_DIR / name).read_text()
        (tmp_path / name).write_text(text.replace(INSTALLED, str(drsync_here)))
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", "--generators=no",
                        *(str(tmp_path / n) for n in UNITS)], capture_output=True, text=True, timeout=60)
    ours = [line for line in (p.stdout + p.stderr).splitlines() if str(tmp_path) in line or "drsync" in line]
    assert p.returncode == 0 and not ours, p.stdout + p.stderr


def _entry_points() -> dict[str, Callable[[list[str]], argparse.Namespace]]:
    """Commands cli.py does not have yet, checked with the argparse entry points they will call."""
    from drsync.daemon.main import build_parser as daemon_parser
    from drsync.site.retention import build_parser as retention_parser

    return {"daemon": daemon_parser().parse_args, "retention": retention_parser().parse_args}


@pytest.mark.parametrize("name", [n for n in UNITS if n.endswith(".service")])
def test_exec_start_parses_with_drsync_cli(name: str) -> None:
    argv = shlex.split(read_unit(name)["Service"]["ExecStart"])
    assert argv[0] == INSTALLED
    command, args = argv[1], argv[2:]
    cli_commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    if command in cli_commands:
        result = CliRunner().invoke(app, [command, *args, "--help"])
        assert result.exit_code == 0, result.output
    else:  # until the typer commands are pasted into cli.py
        assert command in _entry_points(), f"{name}: {command} is neither in cli.py nor an entry point"
        parsed = _entry_points()[command](args)
        assert str(parsed.config) == CONFIG
