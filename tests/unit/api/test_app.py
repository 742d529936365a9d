from __future__ import annotations

import json
import logging
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
from drsync.api.metrics import DrsyncMetrics
from drsync.config import Role, Settings, load_settings
from drsync.errors import TransportError
from drsync.site.state import PrimaryState, SideProgress, StandbyState, StandbyTable, stop_requested
from tests.helpers import make_sites

SPEC_TOP = {"primary cluster", "standby cluster", "apply", "latestBarrierTime", "recovery point objective",
            "failover recovery point time"}
# drsync's additions, after the spec's
DRSYNC_TOP = {"role epoch", "site roles", "last role change", "rpo forecast", "verification",
              "replication mode"}
DELAY_TOP = {"restore delay", "held back keys", "next apply time"}  # only while restore-delay is set
SPEC_SIDE = {"key", "priorKey", "actionType", "progress", "backupRate", "currentStep", "unrestoreKeys",
             "failedStep", "errorMsg", "errorCode", "actionStartTime", "actionEndTime", "updateTime"}
TOKEN = "s3cr3t-token-value"


class FakeDaemon:
    """What drsync.daemon.main.Daemon offers the API, with states set by the test."""

    def __init__(self, settings: Settings, role: Role = "primary") -> None:
        self.settings, self.role = settings, role
        self.metrics = DrsyncMetrics()
        self.primary, self.standby = PrimaryState(), StandbyState()
        self.running = True
        self.woken = 0
        self.error: Exception | None = None

    def states(self) -> tuple[PrimaryState, StandbyState]:
        if self.error is not None:
            raise self.error
        return self.primary, self.standby

    def loop_running(self) -> bool:
        return self.running

    def status(self) -> dict[str, Any]:
        return {"role": self.role, "pid": 1, "loop_running": self.running, "config": "x", "reload": "",
                "paused": "", "jobs": {"backup": {"every_seconds": 60.0, "last_decision": "round k",
                                                  "decided_at": "", "next_run": ""}}}

    def wake(self) -> None:
        self.woken += 1


def _settings(tmp_path: Path, extra: str = "") -> Settings:
    return load_settings(make_sites(tmp_path / "sites", extra=extra).config)


@pytest.fixture
def view(tmp_path: Path) -> FakeDaemon:
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "token").chmod(0o600)
    return FakeDaemon(_settings(tmp_path, f"api-token-file={tmp_path / 'token'}\nrpo-target=10m"))


def test_progress_has_exactly_the_spec_field_names(view: FakeDaemon) -> None:
    view.standby = StandbyState(last_key="20261123_141502", last_barrier_ms=1_795_000_000_000)
    doc = TestClient(create_app(view)).get("/progress").json()
    assert set(doc) == SPEC_TOP | DRSYNC_TOP
    assert doc["role epoch"] == 0 and doc["last role change"] == ""
    assert set(doc["primary cluster"]) == SPEC_SIDE == set(doc["standby cluster"])
    assert set(doc["apply"]) == {"backupState", "restoreState", "backupSuccessTime", "restoreSuccessTime"}
    assert doc["standby cluster"]["actionType"] == "Restore"
    assert int(doc["recovery point objective"]) > 0


def test_openapi_documents_the_spec_names(view: FakeDaemon) -> None:
    schema = TestClient(create_app(view)).get("/openapi.json").json()
    props = schema["components"]["schemas"]["ProgressDocument"]["properties"]
    assert set(props) == SPEC_TOP | DRSYNC_TOP | DELAY_TOP


def test_progress_shows_what_restore_delay_holds_back(view: FakeDaemon) -> None:
    view.standby = StandbyState(last_key="20261123_141502", last_barrier_ms=1_795_000_000_000,
                                restore_delay_s=1800, held_back=["20261123_141602", "20261123_141702"],
                                next_apply_time="2026-11-23 14:46:02")
    doc = TestClient(create_app(view)).get("/progress").json()
    assert set(doc) == SPEC_TOP | DRSYNC_TOP | DELAY_TOP
    assert doc["restore delay"] == "1800" and doc["next apply time"] == "2026-11-23 14:46:02"
    assert doc["held back keys"] == "20261123_141602,20261123_141702"


def test_healthz_ok_and_each_failing_check(view: FakeDaemon) -> None:
    client = TestClient(create_app(view))
    ok = client.get("/healthz")
    assert (ok.status_code, ok.json()) == (200, {"status": "ok"})

    view.primary = PrimaryState(state="abnormal", progress=SideProgress(
        failedStep="SHIP", errorMsg="cannot write /x", errorCode="DRS400"))
    view.standby = StandbyState(last_barrier_ms=1000,
                                tables={"a.b.c": StandbyTable(version=1, barrier_ms=1000)})
    view.running = False
    bad = client.get("/healthz")
    assert bad.status_code == 503
    checks = {c["name"]: c["reason"] for c in bad.json()["checks"]}
    assert set(checks) == {"loop", "state", "rpo"}
    assert "SHIP" in checks["state"] and "DRS400" in checks["state"]
    assert "above rpo-target 600 s" in checks["rpo"]


def test_standby_health_looks_at_the_standby_state(view: FakeDaemon) -> None:
    view.role = "standby"
    view.primary = PrimaryState(state="abnormal")
    assert TestClient(create_app(view)).get("/healthz").status_code == 200


def test_intents_need_the_token(view: FakeDaemon) -> None:
    client = TestClient(create_app(view))
    meta = view.settings.primary_metadata_destination
    assert client.post("/stop-backup").status_code == 401
    wrong = client.post("/stop-backup", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert client.post("/stop-backup", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert not stop_requested(meta, "backup")

    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = client.post("/stop-backup", headers=auth)
    assert r.status_code == 202 and r.json()["intent"] == "stop-backup"
    assert stop_requested(meta, "backup") and view.woken == 1
    assert client.post("/start-backup", headers=auth).json()["message"] == "backup resumed"
    assert not stop_requested(meta, "backup")
    # the primary's daemon does not run restores: it says where to go
    conflict = client.post("/stop-restore", headers=auth)
    assert conflict.status_code == 409 and "restore-port" in conflict.json()["detail"]


def test_intents_disabled_without_token_file(tmp_path: Path) -> None:
    client = TestClient(create_app(FakeDaemon(_settings(tmp_path), "standby")))
    for path in ("/stop-restore", "/start-restore", "/stop-backup"):
        r = client.post(path, headers={"Authorization": "Bearer anything"})
        assert (r.status_code, r.json()) == (403, {"detail": "disabled: set api-token-file"})


def test_token_never_reaches_the_log(view: FakeDaemon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    TestClient(create_app(view)).post("/stop-backup", headers={"Authorization": f"Bearer {TOKEN}"})
    assert "stop-backup recorded" in caplog.text
    assert TOKEN not in caplog.text


def test_failures_answer_503_with_one_line_never_500(view: FakeDaemon) -> None:
    client = TestClient(create_app(view), raise_server_exceptions=False)
    view.error = TransportError("cannot reach the standby\nsecond line")
    r = client.get("/progress")
    assert (r.status_code, r.json()) == (503, {"detail": "cannot reach the standby; second line"})
    view.error = RuntimeError("a bug\nwith details")
    for path in ("/progress", "/healthz", "/metrics"):
        r = client.get(path)
        assert r.status_code == 503
        assert r.json()["detail"] == "internal error: RuntimeError: a bug"


def test_metrics_are_prometheus_text(view: FakeDaemon) -> None:
    view.standby = StandbyState(last_key="k", last_barrier_ms=1000,
                                tables={"a.b.c": StandbyTable(version=3, barrier_ms=1000)})
    r = TestClient(create_app(view)).get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    lag = 'drsync_table_lag_seconds{table="a.b.c"}'
    for name in ("drsync_rpo_seconds", "drsync_rpo_above_target 1.0", lag,
                 'drsync_state{side="primary",state="waiting"} 1.0'):
        assert name in r.text


@pytest.mark.parametrize("broken", [False, True])
def test_schemathesis_finds_no_500(view: FakeDaemon, broken: bool) -> None:
    """Every operation of the served OpenAPI, valid and invalid input: 4xx/2xx/503, never 500."""
    if broken:
        view.error = RuntimeError("state unreadable")
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(view))
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) == 10  # with GET / (the dashboard) and POST /confirm-desync
    strategies = [op.as_strategy(generation_mode=mode) for op in operations
                  for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(strategies))
    def check(case: Any) -> None:
        response = case.call()
        assert response.status_code != 500, (case.method, case.path, response.text)
        assert response.status_code < 500 or response.status_code == 503

    check()


def _shape(value: Any) -> Any:
    """Field names, nested, without values: what a parser of the document relies on."""
    return {k: _shape(v) for k, v in value.items()} if isinstance(value, dict) else None


def test_show_progress_json_and_get_progress_carry_the_same_fields(tmp_path: Path) -> None:
    """One document, two renderers: a field the CLI prints is never dropped by the API's model
    (and the other way round), including drsync's additions after the spec's fields."""
    from drsync.site.progress import read_states
    from tests.helpers import drsync

    sites = make_sites(tmp_path / "sites")
    settings = load_settings(sites.config)
    cli = drsync("show-progress", "--format", "json", "-c", str(sites.config))
    assert cli.returncode == 0, cli.stderr
    printed = json.loads(cli.stdout)

    daemon = FakeDaemon(settings)
    daemon.primary, daemon.standby = read_states(settings)
    served = TestClient(create_app(daemon)).get("/progress").json()
    assert _shape(printed) == _shape(served)
    assert list(printed) == list(served)  # the same order too
    assert set(printed) == SPEC_TOP | DRSYNC_TOP
    assert printed["site roles"] == served["site roles"] and printed["apply"] == served["apply"]
