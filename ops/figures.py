"""Figures over a time window, computed from stored records (never content).

Shared by /metrics (at scrape time), the minute sampler behind the dashboard and the
alert rules, so every process sees the same numbers whichever worker served the
traffic: LLM call records, messages, PHI redaction counts, blocks, breaker history.

LLM outcome codes are the ones chat/llm*.py and chat/llm_pipeline.py store in
``LLMCall.outcome``. The pipeline's own refusals ("rate_limited" from the local
limiter, "breaker_open", "prompt_blocked", "state_unavailable") never reached the
provider; a provider 429 is "upstream_rate_limited". A user who left mid-call
("client_disconnected") is neither a success nor an LLM error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chat.breaker import breaker_transitions
from chat.models import BreakerTransition, LLMCall, Message
from chat.sanitizer import PHI_TYPES
from compliance.models import AuditAction, AuditEvent

LOCAL_RATE_LIMITED = "rate_limited"
UPSTREAM_RATE_LIMITED = "upstream_rate_limited"
# Refused by the pipeline before any upstream call: not an LLM error, no latency.
NOT_CALLED = frozenset(
    {LOCAL_RATE_LIMITED, "breaker_open", "prompt_blocked", "state_unavailable"}
)
RATE_LIMIT_OUTCOMES = frozenset({LOCAL_RATE_LIMITED, UPSTREAM_RATE_LIMITED})
OK_OUTCOMES = frozenset({"ok"})
# Not counted as errors: the user went away, the provider did nothing wrong.
NOT_ERRORS = OK_OUTCOMES | {"client_disconnected"}
OPEN_STATES = ("open", "forced_open")


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def outcome_key(outcome: str, upstream_calls: int) -> str:
    """The outcome as reported: a 429 from the provider is not a local refusal
    (records written before chat stored "upstream_rate_limited" used one code)."""
    if outcome == LOCAL_RATE_LIMITED and upstream_calls > 0:
        return UPSTREAM_RATE_LIMITED
    return outcome


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
    def attempted(self) -> int:
        """Calls that reached (or tried to reach) the provider."""
        return sum(n for name, n in self.by_outcome.items() if name not in NOT_CALLED)

    @property
    def error_rate(self) -> float:
        attempted = self.attempted
        return self.errors / attempted if attempted else 0.0


def _quantiles(values: list[float]) -> dict[str, float | None]:
    return {q: percentile(values, float(q[1:])) for q in ("p50", "p95", "p99")}


def llm_window(*, since: datetime, until: datetime | None = None) -> LLMWindow:
    """Calls, outcomes, tokens and latency quantiles of LLM calls in the window."""
    rows = LLMCall.objects.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lte=until)
    by_outcome: dict[str, int] = {}
    latencies: list[float] = []
    ttfts: list[float] = []
    tokens_in = tokens_out = 0
    for outcome, upstream, latency, ttft, t_in, t_out in rows.values_list(
        "outcome", "upstream_calls", "latency_ms", "ttft_ms", "tokens_in", "tokens_out"
    ).iterator():
        key = outcome_key(outcome, upstream or 0)
        by_outcome[key] = by_outcome.get(key, 0) + 1
        tokens_in += t_in or 0
        tokens_out += t_out or 0
        if key not in NOT_CALLED:
            latencies.append(float(latency or 0))
            if ttft is not None:
                ttfts.append(float(ttft))
    errors = sum(
        n for name, n in by_outcome.items() if name not in NOT_ERRORS | NOT_CALLED
    )
    limited = sum(n for name, n in by_outcome.items() if name in RATE_LIMIT_OUTCOMES)
    return LLMWindow(
        calls=sum(by_outcome.values()),
        errors=errors,
        rate_limited=limited,
        by_outcome=by_outcome,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        latency_ms=_quantiles(latencies),
        ttft_ms=_quantiles(ttfts),
    )


def messages_since(*, since: datetime) -> int:
    return Message.objects.filter(created_at__gte=since).count()


def phi_since(*, since: datetime, types: frozenset[str]) -> tuple[dict[str, int], int]:
    """(redactions by type, strict-mode blocks) since ``since``; only known types."""
    detections: dict[str, int] = {}
    rows = (
        Message.objects.filter(created_at__gte=since, role="user")
        .exclude(redactions={})
        .values_list("redactions", flat=True)
    )
    for redactions in rows.iterator():
        for kind, count in (redactions or {}).items():
            if kind in types and isinstance(count, int):
                detections[kind] = detections.get(kind, 0) + count
    blocked = 0
    blocked_rows = AuditEvent.objects.filter(
        action=AuditAction.MESSAGE_BLOCKED, at__gte=since
    ).values_list("details", flat=True)
    for details in blocked_rows.iterator():
        blocked += 1
        for kind in (details or {}).get("types", []):
            if kind in types:
                detections[kind] = detections.get(kind, 0) + 1
    return detections, blocked


def breaker_open_seconds(
    *, now: datetime, window: timedelta, current_state: str | None = None
) -> float:
    """Seconds the LLM breaker spent open (or forced open) within the window.

    The state at the window's start is the last transition before it; with no
    transition at all the breaker's ``current_state`` (if given) held throughout.
    """
    since = now - window
    rows = list(
        BreakerTransition.objects.filter(
            name="llm", created_at__gte=since, created_at__lte=now
        )
        .order_by("created_at", "pk")
        .values_list("created_at", "to_state")
    )
    before = (
        BreakerTransition.objects.filter(name="llm", created_at__lt=since)
        .order_by("-created_at", "-pk")
        .values_list("to_state", flat=True)
        .first()
    )
    if before is None and not rows:
        before = current_state
    total = 0.0
    opened: datetime | None = since if before in OPEN_STATES else None
    for at, to in rows:
        if to in OPEN_STATES:
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
    start = snapshot.opened_at or snapshot.updated_at
    for row in breaker_transitions(name="llm", limit=200):
        if row.to_state in ("closed", "disabled"):
            break
        start = row.created_at
    return 0.0 if start is None else max(0.0, (now - start).total_seconds())


def phi_types() -> frozenset[str]:
    return frozenset(PHI_TYPES)
