"""Figures over a time window, computed from stored records (never content).

Shared by /metrics (at scrape time), the minute sampler behind the dashboard and the
alert rules, so every process sees the same numbers whichever worker served the
traffic: LLM call records, messages, PHI redaction counts, blocks, breaker history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

RATE_LIMIT_OUTCOMES = {"rate_limited", "rate_limit", "limited", "http_429"}
OK_OUTCOMES = {"ok", "success"}
NOT_CALLED = {"breaker_open", "rate_limited", "rate_limit", "limited", "disabled"}


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class LLMWindow:
    calls: int = 0
    errors: int = 0
    rate_limited: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    ttft_ms: dict[str, float | None] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        attempted = sum(
            n for name, n in self.by_outcome.items() if name not in NOT_CALLED
        )
        return self.errors / attempted if attempted else 0.0


def _quantiles(values: list[float]) -> dict[str, float | None]:
    return {q: percentile(values, float(q[1:])) for q in ("p50", "p95", "p99")}


def llm_window(*, since: datetime) -> LLMWindow:
    """Calls, outcomes, tokens and latency quantiles of LLM calls since ``since``."""
    try:
        from chat.models import LLMCall
    except ImportError:
        return LLMWindow()
    rows = LLMCall.objects.filter(created_at__gte=since).values_list(
        "outcome", "latency_ms", "ttft_ms", "tokens_in", "tokens_out"
    )
    by_outcome: dict[str, int] = {}
    latencies: list[float] = []
    ttfts: list[float] = []
    tokens_in = tokens_out = 0
    for outcome, latency, ttft, t_in, t_out in rows.iterator():
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
        tokens_in += t_in or 0
        tokens_out += t_out or 0
        if outcome not in NOT_CALLED:
            latencies.append(float(latency or 0))
            if ttft is not None:
                ttfts.append(float(ttft))
    calls = sum(by_outcome.values())
    # Refusals (breaker open, rate limits) are counted on their own, not as errors.
    errors = sum(
        n for name, n in by_outcome.items() if name not in OK_OUTCOMES | NOT_CALLED
    )
    limited = sum(n for name, n in by_outcome.items() if name in RATE_LIMIT_OUTCOMES)
    return LLMWindow(
        calls=calls,
        errors=errors,
        rate_limited=limited,
        by_outcome=by_outcome,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        latency_ms=_quantiles(latencies),
        ttft_ms=_quantiles(ttfts),
    )


def messages_since(*, since: datetime) -> int:
    try:
        from chat.models import Message
    except ImportError:
        return 0
    return Message.objects.filter(created_at__gte=since).count()


def phi_since(*, since: datetime, types: frozenset[str]) -> tuple[dict[str, int], int]:
    """(redactions by type, strict-mode blocks) since ``since``; only known types."""
    detections: dict[str, int] = {}
    try:
        from chat.models import Message

        rows = (
            Message.objects.filter(created_at__gte=since, role="user")
            .exclude(redactions={})
            .values_list("redactions", flat=True)
        )
        for redactions in rows.iterator():
            for kind, count in (redactions or {}).items():
                if kind in types and isinstance(count, int):
                    detections[kind] = detections.get(kind, 0) + count
    except ImportError:
        pass
    blocked = 0
    try:
        from compliance.models import AuditAction, AuditEvent

        blocked_rows = AuditEvent.objects.filter(
            action=AuditAction.MESSAGE_BLOCKED, at__gte=since
        ).values_list("details", flat=True)
        for details in blocked_rows.iterator():
            blocked += 1
            for kind in (details or {}).get("types", []):
                if kind in types:
                    detections[kind] = detections.get(kind, 0) + 1
    except ImportError:
        pass
    return detections, blocked


def breaker_open_seconds(*, now: datetime, window: timedelta) -> float:
    """Seconds the LLM breaker spent open (or forced open) within the window."""
    try:
        from chat.models import BreakerTransition
    except ImportError:
        return 0.0
    since = now - window
    rows = list(
        BreakerTransition.objects.filter(name="llm", created_at__gte=since)
        .order_by("created_at")
        .values_list("created_at", "from_state", "to_state")
    )
    total = 0.0
    opened: datetime | None = None
    if rows and rows[0][1] in ("open", "forced_open"):
        opened = since
    for at, _from, to in rows:
        if to in ("open", "forced_open"):
            opened = opened or at
        elif opened is not None:
            total += (at - opened).total_seconds()
            opened = None
    if opened is not None:
        total += (now - opened).total_seconds()
    return total


def breaker_open_since(*, snapshot: Any, now: datetime) -> float:
    """Seconds the breaker has been away from closed (open/half-open/forced open).

    A breaker that flaps open → half-open → open counts from its first opening after
    the last close, so a failing probe does not restart the clock.
    """
    if snapshot is None or snapshot.state in ("closed", "disabled"):
        return 0.0
    try:
        from chat.breaker import breaker_transitions
    except ImportError:
        breaker_transitions = None
    start = snapshot.opened_at or snapshot.updated_at
    if breaker_transitions is not None:
        for row in breaker_transitions(name="llm", limit=200):
            if row.to_state in ("closed", "disabled"):
                break
            start = row.created_at
    return 0.0 if start is None else max(0.0, (now - start).total_seconds())


def phi_types() -> frozenset[str]:
    try:
        from chat.sanitizer import PHI_TYPES
    except ImportError:
        return frozenset()
    return frozenset(PHI_TYPES)
