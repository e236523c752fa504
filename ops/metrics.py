"""Prometheus metrics: per-process request series plus figures computed at scrape time.

Request counters and latency histograms are recorded in each worker; with several
workers ``PROMETHEUS_MULTIPROC_DIR`` (set by ``stepsync.serve``) makes them shared
files that the scrape merges. Everything else (LLM calls, tokens, messages, PHI
detections, breaker, sessions, database size) is read from the database when scraped,
so every worker reports the same values. Labels never carry user data: routes are URL
*names*, PHI types come only from the sanitizer's fixed PHI_TYPES list.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.utils import timezone
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60)
DB_FIGURES_CACHE_SECONDS = 10

REQUEST_LATENCY = Histogram(
    "stepsync_http_request_duration_seconds",
    "Request latency by route name, method and status class.",
    ["route", "method", "status_class"],
    buckets=LATENCY_BUCKETS,
)
REQUESTS = Counter(
    "stepsync_http_requests",
    "Requests by route name, method and status class.",
    ["route", "method", "status_class"],
)
ERRORS = Counter(
    "stepsync_http_errors",
    "Error responses by class (client, server, rate_limited, unavailable).",
    ["error_class"],
)
RATE_LIMIT_HITS = Counter(
    "stepsync_rate_limit_hits", "Requests refused with 429, by scope.", ["scope"]
)


def error_class(status: int) -> str | None:
    if status == 429:
        return "rate_limited"
    if status == 503:
        return "unavailable"
    if status >= 500:
        return "server"
    if status >= 400:
        return "client"
    return None


def record_request(*, route: str, method: str, status: int, seconds: float) -> None:
    """Count one request; ``route`` must be a URL name or a fixed placeholder."""
    method = method if method in METHODS else "OTHER"
    status_class = f"{status // 100}xx"
    REQUEST_LATENCY.labels(route, method, status_class).observe(seconds)
    REQUESTS.labels(route, method, status_class).inc()
    klass = error_class(status)
    if klass is not None:
        ERRORS.labels(klass).inc()
    if status == 429:
        RATE_LIMIT_HITS.labels("http").inc()


def _gauge(name: str, doc: str, value: float, **labels: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def database_figures() -> dict[str, Any]:
    """The scrape-time figures (cached a few seconds: scrapes are frequent)."""
    cached = cache.get("ops:metrics:figures")
    if cached is not None:
        return cached
    from ops import figures, selectors

    now = timezone.now()
    hour = figures.llm_window(since=now - timedelta(hours=1))
    detections, blocked = figures.phi_since(
        since=now - timedelta(hours=1), types=figures.phi_types()
    )
    snapshot = selectors.breaker_snapshot_now()
    stats = selectors.session_stats_now()
    result = {
        "llm": hour,
        "messages_last_minute": figures.messages_since(
            since=now - timedelta(minutes=1)
        ),
        "phi": detections,
        "phi_blocked": blocked,
        "breaker_state": snapshot.state,
        "breaker_failures": snapshot.consecutive_failures,
        "breaker_open_seconds_now": figures.breaker_open_since(
            snapshot=snapshot, now=now
        ),
        "breaker_open_seconds_24h": figures.breaker_open_seconds(
            now=now, window=timedelta(hours=24), current_state=snapshot.state
        ),
        "active_sessions": stats.active_sessions,
        "capacity_pct": float(stats.capacity_used_pct),
        "db_size": selectors.database_size_bytes(),
    }
    cache.set("ops:metrics:figures", result, DB_FIGURES_CACHE_SECONDS)
    return result


class DatabaseCollector(Collector):
    """Gauges read from stored records at scrape time (same in every worker)."""

    def collect(self) -> Iterator[Metric]:
        from ops import figures

        data = database_figures()
        llm = data["llm"]
        calls = GaugeMetricFamily(
            "stepsync_llm_calls_last_hour",
            "LLM calls in the last hour by outcome.",
            labels=["outcome"],
        )
        for outcome, count in sorted(llm.by_outcome.items()):
            calls.add_metric([outcome[:32]], count)
        yield calls
        tokens = GaugeMetricFamily(
            "stepsync_llm_tokens_last_hour",
            "LLM tokens in the last hour.",
            labels=["direction"],
        )
        tokens.add_metric(["in"], llm.tokens_in)
        tokens.add_metric(["out"], llm.tokens_out)
        yield tokens
        yield _gauge(
            "stepsync_llm_error_ratio_last_hour", "LLM error ratio.", llm.error_rate
        )
        limited = GaugeMetricFamily(
            "stepsync_llm_rate_limited_last_hour",
            "LLM rate-limit hits: our limiter's refusals and the provider's 429s.",
            labels=["scope"],
        )
        limited.add_metric(["local"], llm.by_outcome.get(figures.LOCAL_RATE_LIMITED, 0))
        limited.add_metric(
            ["provider"], llm.by_outcome.get(figures.UPSTREAM_RATE_LIMITED, 0)
        )
        yield limited
        for name, quantiles in (("latency", llm.latency_ms), ("ttft", llm.ttft_ms)):
            family = GaugeMetricFamily(
                f"stepsync_llm_{name}_seconds_last_hour",
                f"LLM {name} quantiles over the last hour.",
                labels=["quantile"],
            )
            for q, value in quantiles.items():
                if value is not None:
                    family.add_metric([q], value / 1000.0)
            yield family
        yield _gauge(
            "stepsync_messages_per_second",
            "Chat messages stored per second (1 min avg).",
            data["messages_last_minute"] / 60.0,
        )
        phi = GaugeMetricFamily(
            "stepsync_phi_detections_last_hour",
            "Identifiers redacted or blocked, by type.",
            labels=["type"],
        )
        for kind, count in sorted(data["phi"].items()):
            phi.add_metric([kind], count)
        yield phi
        yield _gauge(
            "stepsync_phi_blocked_last_hour",
            "Messages blocked by strict mode.",
            data["phi_blocked"],
        )
        state = GaugeMetricFamily(
            "stepsync_breaker_state",
            "1 for the LLM breaker's current state.",
            labels=["state"],
        )
        for name in ("closed", "open", "half_open", "forced_open", "disabled"):
            state.add_metric([name], 1.0 if data["breaker_state"] == name else 0.0)
        yield state
        yield _gauge(
            "stepsync_breaker_consecutive_failures",
            "Breaker consecutive failures.",
            data["breaker_failures"],
        )
        yield _gauge(
            "stepsync_breaker_open_seconds",
            "Seconds the breaker has been open now.",
            data["breaker_open_seconds_now"],
        )
        yield _gauge(
            "stepsync_breaker_open_seconds_last_24h",
            "Seconds open in the last 24 h.",
            data["breaker_open_seconds_24h"],
        )
        yield _gauge(
            "stepsync_active_sessions", "Active conversations.", data["active_sessions"]
        )
        yield _gauge(
            "stepsync_capacity_used_ratio",
            "Active sessions / MAX_ACTIVE_SESSIONS.",
            data["capacity_pct"] / 100.0,
        )
        yield _gauge("stepsync_database_size_bytes", "Database size.", data["db_size"])


def process_registry() -> CollectorRegistry:
    """The registry holding this process's (or, multiprocess, all workers') series."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def render_metrics() -> bytes:
    """The exposition text: request series plus the database gauges."""
    registry = CollectorRegistry()
    registry.register(_Merged(process_registry()))
    registry.register(DatabaseCollector())
    return generate_latest(registry)


class _Merged(Collector):
    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        yield from self.source.collect()
