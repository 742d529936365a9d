"""Daemons follow a role change: after `drsync switchover` each one restarts itself into the
swapped configuration and replication runs in the new direction, with nobody restarting them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import write_deltalake

from drsync.demo import create_sample_warehouse, table_dir
from tests.helpers import drsync, duck, rows
from tests.integration.test_daemon import (  # noqa: F401 (fixture)
    _site_with_ports,
    daemons,
    wait_for,
    wait_on_swapped,
)

TABLE = "hr.people.employees"


def test_daemons_follow_a_switchover_and_replicate_back(tmp_path: Path, daemons: Any) -> None:  # noqa: F811
    token = tmp_path / "token"
    token.write_text("follow-token")
    token.chmod(0o600)
    sites, p_port, s_port = _site_with_ports(tmp_path, f"api-token-file={token}\n")
    auth = {"Authorization": "Bearer follow-token"}  # /status names the config file only then
    create_sample_warehouse(sites.primary, rows=10)
    primary = daemons(sites.config, "primary", p_port, tmp_path)
    standby = daemons(sites.config, "standby", s_port, tmp_path)
    wait_for("first set restored", lambda: standby.get("/progress")["standby cluster"]["key"] != ""
             and standby.get("/progress")["standby cluster"]["key"]
             == primary.get("/progress")["primary cluster"]["key"])

    sw = drsync("switchover", "-c", str(sites.config), timeout=180)
    assert sw.returncode == 0, sw.stdout + sw.stderr + primary.log + standby.log
    swapped = sites.config.with_name("sw_backupRestore.ini")

    # Each daemon restarts into the swapped file; with transport=local the two exchange ports.
    wait_on_swapped([(primary, s_port), (standby, p_port)], swapped, auth)
    assert "restarting into it" in primary.log and "restarting into it" in standby.log
    assert primary.proc is not None and primary.proc.poll() is None  # the same process (exec)

    # A write on the new primary (the old standby's warehouse) reaches the old primary.
    new_primary, new_standby = table_dir(sites.standby, TABLE), table_dir(sites.primary, TABLE)
    write_deltalake(str(new_primary), pa.table({"id": pa.array([4242], pa.int64()), "amount": [1.5],
                                               "note": ["after the switchover"]}), mode="append")
    con = duck()
    wait_for("the write replicated back", lambda: rows(con, new_standby) == rows(con, new_primary),
             timeout=60)
    assert (4242, 1.5, "after the switchover") in rows(con, new_standby)
