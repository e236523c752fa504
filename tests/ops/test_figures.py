"""Window figures from stored records: LLM outcomes (refusals vs provider errors) and
the breaker's time spent open."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ops import figures


def _call(**fields: object) -> None:
    from chat.models import LLMCall

    LLMCall.objects.create(**{"created_at": timezone.now(), **fields})


def _window() -> figures.LLMWindow:
    return figures.llm_window(since=timezone.now() - timedelta(minutes=5))


@pytest.mark.django_db
def test_a_provider_429_is_an_llm_error_with_its_latency() -> None:
    for _ in range(3):
        _call(outcome="ok", latency_ms=100, upstream_calls=1)
    _call(outcome="rate_limited", latency_ms=9000, upstream_calls=3, status_code=429)

    window = _window()

    assert window.by_outcome == {"ok": 3, "upstream_rate_limited": 1}
    assert window.error_rate == pytest.approx(0.25)
    assert window.latency_ms["p99"] == 9000
    assert window.rate_limited == 1


@pytest.mark.django_db
def test_a_local_limiter_refusal_is_neither_an_error_nor_a_latency() -> None:
    for _ in range(3):
        _call(outcome="ok", latency_ms=100, upstream_calls=1)
    _call(outcome="rate_limited", latency_ms=0, upstream_calls=0)

    window = _window()

    assert window.by_outcome == {"ok": 3, "rate_limited": 1}
    assert window.error_rate == 0.0
    assert window.latency_ms["p50"] == 100
    assert window.rate_limited == 1


@pytest.mark.django_db
def test_pipeline_refusals_are_not_counted_as_attempts() -> None:
    _call(outcome="breaker_open", upstream_calls=0)
    _call(outcome="prompt_blocked", upstream_calls=0)
    _call(outcome="timeout", latency_ms=20000, upstream_calls=2)

    window = _window()

    assert window.attempted == 1
    assert window.error_rate == 1.0


def _transition(at: object, from_state: str, to_state: str) -> None:
    from chat.models import BreakerTransition

    BreakerTransition.objects.create(
        name="llm", from_state=from_state, to_state=to_state, reason="t", created_at=at
    )


@pytest.mark.django_db
def test_a_breaker_open_all_day_without_transitions_counts_the_whole_day() -> None:
    now = timezone.now()
    _transition(now - timedelta(hours=30), "closed", "forced_open")

    seconds = figures.breaker_open_seconds(now=now, window=timedelta(hours=24))

    assert seconds == pytest.approx(24 * 3600)


@pytest.mark.django_db
def test_breaker_open_time_adds_up_the_open_spans_in_the_window() -> None:
    now = timezone.now()
    _transition(now - timedelta(hours=30), "open", "closed")
    _transition(now - timedelta(hours=3), "closed", "open")
    _transition(now - timedelta(hours=2), "open", "closed")
    _transition(now - timedelta(minutes=10), "closed", "open")

    seconds = figures.breaker_open_seconds(now=now, window=timedelta(hours=24))

    assert seconds == pytest.approx(3600 + 600)


@pytest.mark.django_db
def test_without_any_history_the_current_state_counts() -> None:
    now = timezone.now()

    seconds = figures.breaker_open_seconds(
        now=now, window=timedelta(hours=1), current_state="open"
    )

    assert seconds == pytest.approx(3600)


@pytest.mark.django_db
def test_the_upstream_rate_limited_code_chat_stores_counts_as_a_provider_429() -> None:
    _call(outcome="ok", latency_ms=100, upstream_calls=1)
    _call(outcome="upstream_rate_limited", latency_ms=900, upstream_calls=3)

    window = _window()

    assert window.by_outcome == {"ok": 1, "upstream_rate_limited": 1}
    assert window.error_rate == pytest.approx(0.5)
    assert window.rate_limited == 1


@pytest.mark.django_db
def test_a_user_leaving_mid_call_is_not_an_llm_error() -> None:
    _call(outcome="ok", latency_ms=100, upstream_calls=1)
    _call(outcome="client_disconnected", latency_ms=300, upstream_calls=1)
    _call(outcome="state_unavailable", upstream_calls=0)

    window = _window()

    assert window.error_rate == 0.0
    assert window.attempted == 2
