"""HTTP API fuzzing with schemathesis against the real daemon object (drsync.daemon.main.Daemon, its
scheduler not started) over real sites after a replicated round: every operation of the served
OpenAPI, valid and invalid input, with and without the token; and the same with the state files
on disk corrupted. Never a 500; a 503 answers one line. (tests/unit/test_api.py fuzzes the API
over a stand-in view; this one reads real state files.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from drsync.api.app import create_app
from drsync.config import load_settings
from drsync.daemon.main import Daemon
from drsync.demo import create_sample_warehouse
from drsync.site.state import PrimaryState, StandbyState
from tests.faults.conftest import Reliability, soak
from tests.helpers import Sites, drsync, make_sites

TOKEN = "fuzz-token-0123456789"


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Sites:
    base = tmp_path_factory.mktemp("fuzz-api")
    (base / "token").write_text(TOKEN + "\n")
    (base / "token").chmod(0o600)  # a token readable by others disables the API
    sites = make_sites(base / "sites", extra=f"api-token-file={base / 'token'}\nrpo-target=10m")
    create_sample_warehouse(sites.primary, rows=10)
    drsync("backup", "-c", str(sites.config), check=True)
    drsync("restore", "-c", str(sites.config), check=True)
    return sites


@pytest.mark.parametrize("role", ["primary", "standby"])
@pytest.mark.parametrize("state_files", ["intact", "corrupt"])
def test_schemathesis_against_the_real_daemon(replicated: Sites, role: str, state_files: str,
                                              reliability: Reliability) -> None:
    rel = reliability("HTTP API fuzzing", "schemathesis (positive and negative cases, with and without "
                      "the bearer token) against the real daemon's API; state files intact or corrupt")
    saved = {}
    if state_files == "corrupt":
        for p in (replicated.primary_meta / PrimaryState.FILE, replicated.standby_meta / StandbyState.FILE):
            saved[p] = p.read_bytes()
            p.write_bytes(b'{"last_key": 12, "tables": [')
    try:
        daemon = Daemon(load_settings(replicated.config), role)  # type: ignore[arg-type]
        app = create_app(daemon)
        # The fuzzing below reaches the state files: /progress reads them.
        got = TestClient(app, raise_server_exceptions=False).get("/progress").status_code
        assert got == (200 if state_files == "intact" else 503), got
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
        assert len(operations) >= 8
        strategies = [op.as_strategy(generation_mode=mode) for op in operations
                      for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
        auth = st.sampled_from([None, f"Bearer {TOKEN}", "Bearer wrong", "Basic Zm9vOmJhcg==", "Bearer "])

        @settings(max_examples=soak(80, 800), deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies), authorization=auth)
        def check(case: Any, authorization: str | None) -> None:
            with rel.trial():
                headers = {"Authorization": authorization} if authorization else None
                response = case.call(headers=headers)
                what = (case.method, case.path, response.status_code, response.text[:300])
                assert response.status_code < 500 or response.status_code == 503, what
                if response.status_code == 503 and "application/json" in response.headers.get(
                        "content-type", ""):
                    detail = response.json().get("detail")
                    if isinstance(detail, str):
                        assert "\n" not in detail and detail.strip(), what

        check()
    finally:
        for p, data in saved.items():
            p.write_bytes(data)
    # The intents the fuzzer may have recorded are real files: leave the sites as they were.
    for side in (replicated.primary_meta, replicated.standby_meta):
        for flag in Path(side).glob("*stop*"):
            flag.unlink()
