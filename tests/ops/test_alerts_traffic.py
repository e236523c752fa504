"""Error-rate and P95 rules: windows aggregated over every sample, a minimum number of
requests, explicit "no data" (moved clock throughout)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone

from ops.alerts import alerts_evaluate
from ops.models import Alert
from tests.ops.records import FAST, SLOW, buckets, http_minutes, llm_calls


def _run(rule: str, now: Any) -> Any:
    cache.clear()
    return alerts_evaluate(now=now, only={rule})


def _open(rule: str) -> bool:
    return Alert.objects.filter(rule=rule, resolved_at__isnull=True).exists()


@pytest.mark.django_db
def test_error_rate_over_ten_percent_fires_and_resolves() -> None:
    now = timezone.now()
    llm_calls(now - timedelta(minutes=1), *[("ok", 100)] * 20, *[("timeout", 100)] * 5)
    later = now + timedelta(minutes=10)
    http_minutes(later, *[(30, 0, buckets(30, FAST))] * 5)

    fired = _run("error_rate_high", now)
    resolved = _run("error_rate_high", later)

    assert fired.fired == ["error_rate_high"]
    assert resolved.resolved == ["error_rate_high"]


@pytest.mark.django_db
def test_one_server_error_in_a_quiet_minute_does_not_fire() -> None:
    from compliance.models import Incident

    now = timezone.now()
    http_minutes(now, (0, 0, {}), (0, 0, {}), (0, 0, {}), (0, 0, {}), (1, 1, SLOW))

    result = _run("error_rate_high", now)

    assert result.fired == []
    assert Incident.objects.filter(source_key="alert:error_rate_high").count() == 0


@pytest.mark.django_db
def test_error_rate_sums_every_minute_of_the_window() -> None:
    now = timezone.now()
    http_minutes(
        now,
        *[(10, 3, buckets(10, FAST))] * 4,
        (10, 0, buckets(10, FAST)),
    )

    result = _run("error_rate_high", now)

    assert result.fired == ["error_rate_high"]
    assert Alert.objects.get(rule="error_rate_high").value == pytest.approx(0.24)


@pytest.mark.django_db
def test_error_rate_without_any_data_is_reported_as_no_data() -> None:
    result = _run("error_rate_high", timezone.now())

    assert result.no_data == ["error_rate_high"]
    assert result.fired == []


@pytest.mark.django_db
def test_no_data_leaves_an_open_alert_open() -> None:
    now = timezone.now()
    http_minutes(now, *[(10, 5, buckets(10, FAST))] * 5)
    _run("error_rate_high", now)

    later = _run("error_rate_high", now + timedelta(minutes=30))

    assert later.no_data == ["error_rate_high"]
    assert _open("error_rate_high") is True


@pytest.mark.django_db
def test_llm_p95_over_three_seconds_fires_and_resolves() -> None:
    now = timezone.now()
    llm_calls(now - timedelta(minutes=1), *[("ok", 4000)] * 20)
    later = now + timedelta(minutes=10)
    llm_calls(later - timedelta(minutes=1), *[("ok", 300)] * 20)

    fired = _run("latency_p95_high", now)
    resolved = _run("latency_p95_high", later)

    assert fired.fired == ["latency_p95_high"]
    assert resolved.resolved == ["latency_p95_high"]


@pytest.mark.django_db
def test_http_p95_over_three_seconds_fires_and_resolves() -> None:
    now = timezone.now()
    http_minutes(now, *[(10, 0, buckets(10, SLOW))] * 5)
    later = now + timedelta(minutes=10)
    http_minutes(later, *[(10, 0, buckets(10, FAST))] * 5)

    fired = _run("latency_p95_high", now)
    resolved = _run("latency_p95_high", later)

    assert fired.fired == ["latency_p95_high"]
    assert Alert.objects.get(rule="latency_p95_high").value == 5.0
    assert resolved.resolved == ["latency_p95_high"]


@pytest.mark.django_db
def test_p95_of_a_handful_of_slow_requests_does_not_fire() -> None:
    now = timezone.now()
    http_minutes(now, (3, 0, buckets(3, SLOW)))

    assert _run("latency_p95_high", now).fired == []
