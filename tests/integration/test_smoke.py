from __future__ import annotations

from drsync.demo import ROUND_WRITES, TABLES, create_sample_warehouse, table_dir
from tests.helpers import Sites, drsync, duck, latest_version, rows


def test_rounds_of_writes_arrive_content_equal(sites: Sites) -> None:
    """Every round: backup + restore, then each table equal at the barrier by DuckDB."""
    create_sample_warehouse(sites.primary, rows=60)
    con = duck()
    for r in range(len(ROUND_WRITES) + 1):
        if r:
            ROUND_WRITES[r - 1](sites.primary, r)
        drsync("backup", "-c", str(sites.config), check=True)
        drsync("restore", "-c", str(sites.config), check=True)
        for name in TABLES:
            p, s = table_dir(sites.primary, name), table_dir(sites.standby, name)
            v = latest_version(p)
            assert latest_version(s) == v, name
            assert rows(con, s) == rows(con, p), f"round {r}: {name} differs"
    v = drsync("verify", "-c", str(sites.config), "--deep")
    assert v.returncode == 0, v.stdout + v.stderr
    assert f"{len(TABLES)} of {len(TABLES)} table(s) equal" in v.stdout
