"""The load report's figures (bench/load/report.py), from made-up samples."""

from __future__ import annotations

from bench.load.client import Sample
from bench.load.report import RunFigures, percentile, started_after
from bench.load.scenarios import SCENARIOS


def sample(
    kind: str, started: float, latency: float, ttfe: float | None = None
) -> Sample:
    return Sample(
        kind=kind,
        status=201,
        error="",
        latency_s=latency,
        ttfe_s=ttfe,
        source="llm",
        finished_at=started + latency,
    )


def figures(samples: list[Sample], window: float | None) -> dict[str, float | None]:
    return RunFigures(
        scenario="test",
        duration_s=10.0,
        samples=samples,
        cpu_s=1.0,
        rss_peak_mb=1.0,
        rss_end_mb=1.0,
        ramp_window_s=window,
    ).as_dict()


def test_percentile_is_nearest_rank():
    assert percentile([0.3, 0.1, 0.2, 0.4], 50) == 0.2
    assert percentile([0.3, 0.1, 0.2, 0.4], 99) == 0.4
    assert percentile([], 99) is None


def test_started_after_counts_from_the_first_request_of_the_run():
    setup = sample("create", 100.0, 0.5)
    early = sample("llm", 101.0, 0.5)
    late = sample("llm", 110.0, 0.5)

    assert started_after([setup, early, late], [early, late], 5.0) == [late]


def test_the_p99_after_the_ramp_leaves_out_the_arrivals_tail():
    arrivals = [sample("llm", 100.0 + i / 10, 2.0) for i in range(10)]
    steady = [sample("llm", 120.0 + i, 0.5) for i in range(100)]

    result = figures(arrivals + steady, window=14.0)

    assert result["p99"] == 2.0
    assert result["p99_after_ramp"] == 0.5


def test_streams_get_their_own_time_to_first_event_after_the_ramp():
    arrivals = [sample("stream", 100.0, 3.0, ttfe=1.5)]
    steady = [sample("stream", 120.0 + i, 1.0, ttfe=0.4) for i in range(10)]

    result = figures(arrivals + steady, window=14.0)

    assert result["ttfe_p99"] == 1.5
    assert result["ttfe_p99_after_ramp"] == 0.4


def test_a_run_without_a_ramp_window_reports_no_split():
    result = figures([sample("llm", 100.0, 0.5)], window=None)

    assert "p99_after_ramp" not in result


def test_a_scenarios_arrival_window_is_its_ramp_plus_the_longest_think():
    llm_300 = SCENARIOS["llm-300"]

    assert llm_300.ramp() == 7.0
    assert llm_300.arrival_window() == 14.0
