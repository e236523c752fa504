"""Minute samples of the dashboard series (MetricSample) and of HTTP traffic
(RequestMinute), written by the job runner.

Database figures come from ops.figures. HTTP figures come from the Prometheus
multiprocess files of the web workers: the directory named by
PROMETHEUS_MULTIPROC_DIR (a runner started by ``stepsync.serve`` inherits it), else
the live servers' directories under ``var/prometheus-multiproc/`` (a runner started
on its own, beside the server). They are read as per-minute deltas of the cumulative
counters, per directory, so a restarted server (a new directory) is not a negative
minute. No directory found: no RequestMinute row, and the HTTP alert rules report
"no data" rather than "clear".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from ops import figures, selectors
from ops.models import MetricSample, RequestMinute
from stepsync.serve import METRICS_DIR

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


# Cumulative totals per multiprocess directory at the previous sample.
_previous: dict[str, HttpTotals] = {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def multiproc_dirs() -> list[Path]:
    """Where the web workers write their Prometheus files (see the module doc)."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if configured:
        return [Path(configured)] if Path(configured).is_dir() else []
    if not METRICS_DIR.is_dir():
        return []
    return sorted(
        path
        for path in METRICS_DIR.iterdir()
        if path.is_dir() and path.name.isdigit() and _pid_alive(int(path.name))
    )


def http_totals(path: Path) -> HttpTotals:
    """Cumulative request counts and latency buckets of all workers writing ``path``."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))
    totals = HttpTotals()
    for family in registry.collect():
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


def _delta(current: HttpTotals, previous: HttpTotals) -> HttpTotals:
    if current.requests < previous.requests:
        return HttpTotals()  # the directory was reset: nothing known for this minute
    return HttpTotals(
        requests=current.requests - previous.requests,
        server_errors=current.server_errors - previous.server_errors,
        buckets={
            le: value - previous.buckets.get(le, 0.0)
            for le, value in current.buckets.items()
        },
    )


def http_minute() -> HttpTotals | None:
    """The last minute's HTTP traffic over every directory seen at the previous
    sample too; None when there is no directory or none was seen before (the first
    sample after start only sets the baseline)."""
    current = {str(path): http_totals(path) for path in multiproc_dirs()}
    known = [path for path in current if path in _previous]
    minute = HttpTotals()
    for path in known:
        delta = _delta(current[path], _previous[path])
        minute.requests += delta.requests
        minute.server_errors += delta.server_errors
        for le, value in delta.buckets.items():
            minute.buckets[le] = minute.buckets.get(le, 0.0) + value
    _previous.clear()
    _previous.update(current)
    return minute if known else None


def _http_series(minute: HttpTotals | None, now: datetime) -> dict[str, float]:
    if minute is None:
        return {}
    RequestMinute.objects.create(
        requests=int(minute.requests),
        server_errors=int(minute.server_errors),
        buckets={repr(le): value for le, value in minute.buckets.items() if value},
        created_at=now,
    )
    out = {"http_requests": minute.requests}
    if minute.requests > 0:
        out["http_error_ratio"] = minute.server_errors / minute.requests
        p95 = p95_from_buckets(minute.buckets)
        if p95 is not None:
            out["http_p95_seconds"] = p95
    return out


def sample_minute(*, now: datetime) -> int:
    """Write one sample per series for the minute ending at ``now``; prune old ones."""
    minute = figures.llm_window(since=now - timedelta(minutes=1), until=now)
    detections, blocked = figures.phi_since(
        since=now - timedelta(minutes=1), types=figures.phi_types()
    )
    stats = selectors.session_stats_now()
    snapshot = selectors.breaker_snapshot_now()
    http = _http_series(http_minute(), now)
    values = {
        "messages_per_min": float(
            figures.messages_since(since=now - timedelta(minutes=1))
        ),
        "llm_calls": float(minute.calls),
        "llm_p95_seconds": (minute.latency_ms.get("p95") or 0.0) / 1000.0,
        "error_ratio": max(minute.error_rate, http.get("http_error_ratio", 0.0)),
        "active_sessions": float(stats.active_sessions),
        "capacity_pct": float(stats.capacity_used_pct),
        "phi_detections": float(sum(detections.values())),
        "phi_blocked": float(blocked),
        "breaker_open": 1.0 if snapshot.state in figures.OPEN_STATES else 0.0,
        "db_size_mb": selectors.database_size_bytes() / (1024 * 1024),
        **http,
    }
    MetricSample.objects.bulk_create(
        [
            MetricSample(series=name, value=value, created_at=now)
            for name, value in values.items()
        ]
    )
    cutoff = now - timedelta(hours=SERIES_KEEP_HOURS)
    MetricSample.objects.filter(created_at__lt=cutoff).delete()
    RequestMinute.objects.filter(created_at__lt=cutoff).delete()
    return len(values)
