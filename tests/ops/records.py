"""Stored records the alert tests start from: LLM calls and sampled HTTP minutes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any


def llm_calls(at: Any, *outcomes_and_latency: tuple[str, int]) -> None:
    from chat.models import LLMCall

    for outcome, latency in outcomes_and_latency:
        LLMCall.objects.create(
            outcome=outcome,
            latency_ms=latency,
            upstream_calls=0 if outcome == "rate_limited" else 1,
            created_at=at,
        )


def http_minutes(now: Any, *minutes: tuple[int, int, dict[str, int]]) -> None:
    """RequestMinute rows ending at ``now``: (requests, 5xx, buckets), oldest first."""
    from ops.models import RequestMinute

    for back, (requests, errors, buckets) in enumerate(reversed(minutes)):
        RequestMinute.objects.create(
            requests=requests,
            server_errors=errors,
            buckets=buckets,
            created_at=now - timedelta(minutes=back),
        )


FAST = {"0.1": 1}
SLOW = {"5.0": 1}


def buckets(count: int, kind: dict[str, int]) -> dict[str, int]:
    return {le: count * n for le, n in kind.items()}
