from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from drsync.api.metrics import DrsyncMetrics
from drsync.site.state import PrimaryState, StandbyState, StandbyTable

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MS = int(NOW.timestamp() * 1000)


def _samples(m: DrsyncMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(m.render().decode()) for s in family.samples}


def test_site_gauges_follow_both_states() -> None:
    m = DrsyncMetrics()
    primary = PrimaryState(state="backuping", shipped=["k2"], unshipped=["k3"])
    standby = StandbyState(last_key="k1", last_barrier_ms=MS - 90_000, tables={
        "a.b.fresh": StandbyTable(version=5, barrier_ms=MS - 90_000),
        "a.b.stuck": StandbyTable(version=1, barrier_ms=MS - 600_000),
    })
    m.update(primary, standby, timedelta(minutes=5), now=NOW)
    got = _samples(m)
    assert got[("drsync_rpo_seconds", ())] == 600  # the stuck table counts with its own barrier
    assert got[("drsync_rpo_target_seconds", ())] == 300
    assert got[("drsync_rpo_above_target", ())] == 1
    assert got[("drsync_last_barrier_timestamp_seconds", ())] == (MS - 90_000) / 1000
    assert got[("drsync_sets_pending", ())] == 2
    assert got[("drsync_table_lag_seconds", (("table", "a.b.stuck"),))] == 600
    assert got[("drsync_state", (("side", "primary"), ("state", "backuping")))] == 1
    assert got[("drsync_state", (("side", "primary"), ("state", "waiting")))] == 0
    assert got[("drsync_state", (("side", "standby"), ("state", "waiting")))] == 1

    # a table no longer replicated disappears from the lag gauge
    standby.tables.pop("a.b.stuck")
    m.update(primary, standby, None, now=NOW)
    got = _samples(m)
    assert ("drsync_table_lag_seconds", (("table", "a.b.stuck"),)) not in got
    assert got[("drsync_rpo_above_target", ())] == 0 and got[("drsync_rpo_target_seconds", ())] == 0


def test_nothing_restored_yet_is_nan_not_zero() -> None:
    m = DrsyncMetrics()
    m.update(PrimaryState(), StandbyState(), timedelta(minutes=5), now=NOW)
    got = _samples(m)
    assert math.isnan(got[("drsync_rpo_seconds", ())])
    assert got[("drsync_rpo_above_target", ())] == 0


def test_pass_counters_and_histogram() -> None:
    m = DrsyncMetrics()
    m.observe_pass(4.2, shipped=41_000_000)
    m.observe_pass(0.3, applied=1000)
    got = _samples(m)
    assert got[("drsync_bytes_shipped_total", ())] == 41_000_000
    assert got[("drsync_bytes_applied_total", ())] == 1000
    assert got[("drsync_round_duration_seconds_count", ())] == 2
    assert got[("drsync_round_duration_seconds_bucket", (("le", "5.0"),))] == 2
    assert got[("drsync_round_duration_seconds_bucket", (("le", "0.5"),))] == 1


def test_each_daemon_has_its_own_registry() -> None:
    a, b = DrsyncMetrics(), DrsyncMetrics()  # no "Duplicated timeseries" from a global registry
    a.observe_pass(1, shipped=5)
    assert _samples(b)[("drsync_bytes_shipped_total", ())] == 0


def test_forecast_gauges() -> None:
    from drsync.site.forecast import PipelineRate, forecast

    f = forecast([("20261206_120000", 100 << 20)], 0.0, PipelineRate(1 << 20, 0), target_s=60, now_s=10.0)
    text = DrsyncMetrics().scrape(PrimaryState(), StandbyState(), None, f).decode()
    assert "drsync_rpo_forecast_seconds 110.0" in text
    assert "drsync_rpo_breach_predicted 1.0" in text and "drsync_backlog_bytes 1.048576e+08" in text


def test_example_alert_rules_name_only_metrics_that_exist() -> None:
    import re
    from pathlib import Path

    rules = (Path(__file__).resolve().parents[3] / "docs" / "alerts.yml").read_text()
    named = set(re.findall(r"\bdrsync_[a-z_]+", rules))
    served = {m.name for m in text_string_to_metric_families(
        DrsyncMetrics().scrape(PrimaryState(), StandbyState(), None).decode())}
    assert named and named <= served, named - served


def test_verified_barrier_and_flagged_tables() -> None:
    from drsync.site.state import VerifiedTable, VerifyState

    m = DrsyncMetrics()
    standby = StandbyState(tables={"a.b.c": StandbyTable(version=3, barrier_ms=MS),
                                   "a.b.d": StandbyTable(version=1, barrier_ms=MS)})
    m.update_verification(None, standby)
    assert math.isnan(_samples(m)[("drsync_verified_barrier_timestamp_seconds", ())])
    state = VerifyState(verified_barrier_ms=MS - 5_000, tables={
        "a.b.c": VerifiedTable(version=3, verified_barrier_ms=MS - 5_000),
        "a.b.d": VerifiedTable(version=1, verified_barrier_ms=MS - 1_000, problems=["x missing"]),
        "a.b.gone": VerifiedTable(version=1, problems=["no longer replicated: not counted"])})
    m.update_verification(state, standby)
    got = _samples(m)
    assert got[("drsync_verified_barrier_timestamp_seconds", ())] == (MS - 5_000) / 1000
    assert got[("drsync_verification_flagged_tables", ())] == 1
