"""Minute samples of the dashboard series (MetricSample), written by the job runner.

Database figures come from ops.figures; HTTP figures come from the Prometheus
multiprocess files of the web workers (the runner started by ``stepsync.serve``
inherits PROMETHEUS_MULTIPROC_DIR), as per-minute deltas of the cumulative counters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ops import figures, selectors
from ops.models import MetricSample

SERIES_KEEP_HOURS = 48
DASHBOARD_SERIES = (
    ("messages_per_min", "Messages per minute"),
    ("http_p95_seconds", "HTTP P95 latency (s)"),
    ("llm_p95_seconds", "LLM P95 latency (s)"),
    ("llm_calls", "LLM calls per minute"),
    ("error_ratio", "Error ratio (LLM, HTTP 5xx)"),
    ("active_sessions", "Active sessions"),
    ("capacity_pct", "Capacity used (%)"),
    ("phi_detections", "PHI detections per minute"),
    ("breaker_open", "Breaker open (1 = open)"),
    ("db_size_mb", "Database size (MB)"),
)


@dataclass
class HttpTotals:
    requests: float = 0.0
    server_errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)


_previous: HttpTotals | None = None


def http_totals() -> HttpTotals | None:
    """Cumulative request counts and latency buckets of all workers, or None."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    from ops.metrics import process_registry

    totals = HttpTotals()
    for family in process_registry().collect():
        for sample in family.samples:
            if sample.name == "stepsync_http_requests_total":
                totals.requests += sample.value
                if sample.labels.get("status_class") == "5xx":
                    totals.server_errors += sample.value
            elif sample.name == "stepsync_http_request_duration_seconds_bucket":
                le = float(sample.labels["le"])
                totals.buckets[le] = totals.buckets.get(le, 0.0) + sample.value
    return totals


def p95_from_buckets(delta: dict[float, float]) -> float | None:
    """Upper bound of the bucket holding the 95th percentile (cumulative buckets)."""
    if not delta:
        return None
    total = delta.get(float("inf"), max(delta.values()))
    if total <= 0:
        return None
    for le in sorted(delta):
        if delta[le] >= 0.95 * total:
            return (
                le if le != float("inf") else max(k for k in delta if k != float("inf"))
            )
    return None


def _http_minute() -> dict[str, float]:
    global _previous
    current = http_totals()
    if current is None:
        return {}
    previous, _previous = _previous, current
    if previous is None:
        return {}
    requests = current.requests - previous.requests
    errors = current.server_errors - previous.server_errors
    out = {"http_requests": requests}
    if requests > 0:
        out["http_error_ratio"] = errors / requests
        delta = {
            le: current.buckets.get(le, 0) - previous.buckets.get(le, 0)
            for le in current.buckets
        }
        p95 = p95_from_buckets(delta)
        if p95 is not None:
            out["http_p95_seconds"] = p95
    return out


def sample_minute(*, now: datetime) -> int:
    """Write one sample per series for the minute ending at ``now``; prune old ones."""
    minute = figures.llm_window(since=now - timedelta(minutes=1))
    detections, blocked = figures.phi_since(
        since=now - timedelta(minutes=1), types=figures.phi_types()
    )
    stats = selectors.session_stats_or_none()
    snapshot = selectors.breaker_snapshot_or_none()
    http = _http_minute()
    values = {
        "messages_per_min": float(
            figures.messages_since(since=now - timedelta(minutes=1))
        ),
        "llm_calls": float(minute.calls),
        "llm_p95_seconds": (minute.latency_ms.get("p95") or 0.0) / 1000.0,
        "error_ratio": max(minute.error_rate, http.get("http_error_ratio", 0.0)),
        "active_sessions": float(getattr(stats, "active_sessions", 0)),
        "capacity_pct": float(getattr(stats, "capacity_used_pct", 0.0)),
        "phi_detections": float(sum(detections.values())),
        "phi_blocked": float(blocked),
        "breaker_open": 1.0
        if getattr(snapshot, "state", "") in ("open", "forced_open")
        else 0.0,
        "db_size_mb": selectors.database_size_bytes() / (1024 * 1024),
        **http,
    }
    MetricSample.objects.bulk_create(
        [
            MetricSample(series=name, value=value, created_at=now)
            for name, value in values.items()
        ]
    )
    MetricSample.objects.filter(
        created_at__lt=now - timedelta(hours=SERIES_KEEP_HOURS)
    ).delete()
    return len(values)
