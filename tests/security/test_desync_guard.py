"""Finding 10 of issue 15: a typo in publication-list deleted the standby (every table
desynchronised and, with drop-desync-table, dropped; exit 0). Now an unknown publication is an
error, and a round desynchronising more than desync-guard of the tables waits for a confirmation."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from drsync.api.app import create_app
from drsync.config import load_settings
from drsync.primary.round import run_backup
from tests.helpers import Sites, drsync, duck, rows
from tests.security.attack import write_table
from tests.unit.api.test_app import TOKEN, FakeDaemon

TABLES = [f"db.s.t{i}" for i in range(5)]


def _replicated(sites: Sites, extra: str = "") -> None:
    with open(sites.config, "a") as f:
        f.write("desync-table-operation=drop-desync-table\n" + extra)
    for name in TABLES:
        write_table(sites.primary, name, [1])
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)


def _standby_tables(sites: Sites) -> list[str]:
    return sorted(json.loads((sites.standby_meta / "standby-state.json").read_text())["tables"])


def test_a_typo_in_the_publication_list_desynchronises_nothing(sites: Sites, tmp_path: Path) -> None:
    _replicated(sites)
    publist = tmp_path / "pub.list"
    publist.write_text("*.alll\n")  # meant: *.all
    b = drsync("backup", "-c", str(sites.config), "--publication-list", str(publist))
    assert b.returncode == 2, b.stdout + b.stderr
    assert "*.alll" in b.stderr and str(publist) in b.stderr and "Traceback" not in b.stderr
    drsync("restore", "-c", str(sites.config), check=True)
    assert _standby_tables(sites) == TABLES
    for name in TABLES:
        assert rows(duck(), sites.standby.joinpath(*name.split("."))) == [(1,)]


def _unpublish_two(sites: Sites) -> None:
    drsync("publication", "drop", "all", "-c", str(sites.config), check=True)
    drsync("publication", "create", "most", "-c", str(sites.config), "--db", "db", "--table",
           "s.t0,s.t1,s.t2", check=True)


def test_a_round_desynchronising_too_much_waits_for_confirmation(sites: Sites) -> None:
    _replicated(sites)
    _unpublish_two(sites)  # 2 of 5 tables: 40 % > the default 20 %
    b = drsync("backup", "-c", str(sites.config))
    assert b.returncode == 1 and "db.s.t3" in b.stderr and "db.s.t4" in b.stderr, b.stderr
    assert "--confirm-desync" in b.stderr and "Traceback" not in b.stderr
    drsync("restore", "-c", str(sites.config), check=True)
    assert _standby_tables(sites) == TABLES, "nothing desynchronised, nothing dropped"
    drsync("backup", "-c", str(sites.config), "--confirm-desync", check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    assert _standby_tables(sites) == TABLES[:3]
    assert not (sites.standby / "db" / "s" / "t4").exists()


def test_confirmation_through_the_api(sites: Sites, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    _replicated(sites, f"api-token-file={token}\n")
    settings = load_settings(sites.config)
    client = TestClient(create_app(FakeDaemon(settings)))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/confirm-desync", headers=auth).status_code == 409  # nothing refused yet
    _unpublish_two(sites)
    assert drsync("backup", "-c", str(sites.config)).returncode == 1
    assert client.post("/confirm-desync").status_code in (401, 403)
    r = client.post("/confirm-desync", headers=auth)
    assert r.status_code == 202 and "db.s.t3, db.s.t4" in r.json()["message"], r.text
    result = run_backup(settings)  # the daemon's next round: no flag, the recorded confirmation
    assert result.key is not None and "2 table(s) desynchronised" in result.message
    # One round only: the next refusal needs a new confirmation.
    assert not (settings.primary_metadata_destination / "desync-confirmed.json").exists()


def test_desync_guard_na_turns_it_off(sites: Sites) -> None:
    _replicated(sites, "desync-guard=N/A\n")
    _unpublish_two(sites)
    drsync("backup", "-c", str(sites.config), check=True)
