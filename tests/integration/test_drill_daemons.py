"""A drill made while both daemons replicate and the primary keeps writing (real processes)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from drsync.demo import ROUND_WRITES, TABLES, create_sample_warehouse, table_dir
from drsync.site.layout import DRILLS_DIR
from tests.helpers import drsync, duck, rows
from tests.integration.test_daemon import _caught_up, _key_after_now, _site_with_ports, daemons, wait_for

__all__ = ["daemons"]  # the fixture, used by name


def test_drill_while_daemons_replicate(tmp_path: Path, daemons: Any) -> None:
    sites, p_port, s_port = _site_with_ports(tmp_path)
    create_sample_warehouse(sites.primary, rows=30)
    daemons(sites.config, "primary", p_port, tmp_path)
    standby = daemons(sites.config, "standby", s_port, tmp_path)
    wait_for("first set restored", lambda: _caught_up(sites), timeout=60)

    writing = threading.Event()
    failures: list[BaseException] = []

    def keep_writing() -> None:
        try:
            for r, write in enumerate(ROUND_WRITES[:5] * 2):
                write(sites.primary, r + 1)
                after = _key_after_now()  # a round cut after the write
                writing.set()
                wait_for("a round after the write", lambda a=after: _caught_up(sites, after=a),
                         timeout=60)
        except BaseException as e:  # reported by the test
            failures.append(e)
            writing.set()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    writing.wait()
    fork = tmp_path / "drill"
    p = drsync("drill", "start", "live", "--into", str(fork), "-c", str(sites.config))
    writer.join()
    assert not failures, failures
    assert p.returncode == 0, p.stdout + p.stderr
    rec = json.loads((sites.standby_meta / DRILLS_DIR / "live.json").read_text())
    con = duck()
    for name, version in rec["tables"].items():  # the fork: the primary's rows at the barrier
        assert rows(con, table_dir(fork, name)) == rows(con, table_dir(sites.primary, name), version), name

    # replication went on through it: the standby catches up with the primary's last writes
    ROUND_WRITES[0](sites.primary, 99)
    last = _key_after_now()
    wait_for("the last writes restored", lambda: _caught_up(sites, after=last), timeout=60)
    # A set's key can run ahead of the clock (rounds back to back bump it a second each), so a
    # key after `last` does not prove the set holds the last writes: wait for the content too.
    wait_for("the standby equal to the primary", lambda: all(
        rows(con, table_dir(sites.standby, n)) == rows(con, table_dir(sites.primary, n)) for n in TABLES),
        timeout=60)
    for name in TABLES:
        assert rows(con, table_dir(sites.standby, name)) == rows(con, table_dir(sites.primary, name)), name
    assert "error" not in standby.decision().lower()
    drsync("drill", "drop", "live", "--yes", "-c", str(sites.config), check=True)
    assert not fork.exists()
