"""drsync.site.forecast: backlog and measured rates -> when caught up, and a breach before it happens."""

from __future__ import annotations

from pathlib import Path

from drsync.site.forecast import PipelineRate, forecast, key_barrier_s, measured_rate
from drsync.site.rpo_history import STEP_S, WINDOW_S, load_history, record_rpo

MB = 1 << 20


def row(action: str, nbytes: int, seconds: float, status: str = "complete") -> dict[str, str]:
    return {"action": action, "bytes": str(nbytes), "seconds": str(seconds), "status": status}


def test_rate_adds_ship_and_apply_times_and_overheads() -> None:
    history = [row("backup", 100 * MB, 10), row("restore", 100 * MB, 5),  # 10 + 20 MB/s
               row("backup", 0, 2), row("restore", 0, 1), row("backup", 50 * MB, 1, "failed")]
    rate = measured_rate(history)
    assert rate is not None
    assert abs(rate.bytes_per_s - 100 * MB / 15) < 1  # 1/r = 1/10 + 1/20 (MB/s)
    assert rate.overhead_s == 3  # idle round 2 s + idle restore 1 s; the failed row ignored
    assert measured_rate([row("backup", 0, 2)]) is None  # nothing measured moves bytes


def test_a_backlog_on_a_slow_link_predicts_the_breach_before_it_happens() -> None:
    now = key_barrier_s("20261206_120000")
    assert now is not None
    restored = now - 60  # RPO 60 s now, target 10 min: not breached yet
    rate = PipelineRate(bytes_per_s=1 * MB, overhead_s=2)
    pending = [("20261206_115930", 300 * MB), ("20261206_120000", 400 * MB)]
    f = forecast(pending, restored, rate, target_s=600, now_s=now)
    # set 1 lands at now+302: RPO then 362; set 2 at now+704, the standby still at set 1's barrier
    assert f.caught_up_in_s == 704 and f.rpo_forecast_s == 704 + 30
    assert f.breach_predicted and "breach predicted" in f.note
    assert f.backlog_sets == 2 and f.backlog_bytes == 700 * MB
    fast = forecast(pending, restored, PipelineRate(100 * MB, 2), target_s=600, now_s=now)
    assert not fast.breach_predicted and fast.rpo_forecast_s is not None and fast.rpo_forecast_s < 600


def test_no_backlog_and_no_measurement() -> None:
    caught_up = forecast([], 1000.0, None, target_s=600, now_s=1030.0)
    assert (caught_up.caught_up_in_s, caught_up.rpo_forecast_s, caught_up.breach_predicted) == (0, 30, False)
    late = forecast([], 0.0, None, target_s=600, now_s=1000.0)
    assert late.breach_predicted  # already above the target: said, not hidden
    unknown = forecast([("20261206_120000", MB)], None, None, target_s=600, now_s=0)
    assert unknown.rpo_forecast_s is None and not unknown.breach_predicted and "no round" in unknown.note


def test_rpo_history_is_bounded_in_time_and_in_samples(tmp_path: Path) -> None:
    t0 = 1_800_000_000.0
    assert record_rpo(tmp_path, None, t0)
    assert not record_rpo(tmp_path, 5, t0 + STEP_S / 2)  # too soon: one sample per step
    spacing = WINDOW_S / 100  # 300 samples over three days: only the last day's stay
    for i in range(1, 300):
        record_rpo(tmp_path, i, t0 + i * spacing)
    samples = load_history(tmp_path)
    assert 100 <= len(samples) <= 101
    assert samples[-1] == (t0 + 299 * spacing, 299) and samples[0][0] >= samples[-1][0] - WINDOW_S
    (tmp_path / "rpo-history.json").write_text("[[1, ")  # damaged: a new chart, no error
    assert load_history(tmp_path) == []
