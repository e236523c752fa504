"""Ops middleware (async-capable): request metrics, maintenance mode, no cookies on probes."""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse, JsonResponse

from chat.middleware import is_probe
from ops import metrics
from ops.maintenance import maintenance_active
from stepsync.middleware import _DualMode


def route_name(request: HttpRequest) -> str:
    """The resolved URL name (never the raw path, which may hold ids)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return (match.view_name or "unnamed")[:80]


class RequestMetricsMiddleware(_DualMode):
    """Time every request and count it by route name, method and status class."""

    def before(self, request: HttpRequest) -> HttpResponse | None:
        request._ops_started = time.perf_counter()  # type: ignore[attr-defined]  # per-request timing mark
        return None

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        started = getattr(request, "_ops_started", None)
        if started is not None:
            metrics.record_request(
                route=route_name(request),
                method=request.method or "OTHER",
                status=response.status_code,
                seconds=time.perf_counter() - started,
            )
        return response


class MaintenanceMiddleware(_DualMode):
    """503 for everything but liveness while a rotation or restore holds the lock."""

    def before(self, request: HttpRequest) -> HttpResponse | None:
        if request.path.startswith("/health/live") or not maintenance_active():
            return None
        response = JsonResponse(
            {
                "error": "maintenance",
                "message": "Maintenance in progress; try again soon.",
            },
            status=503,
        )
        response["Retry-After"] = "60"
        return response


class ProbeNoCookiesMiddleware(_DualMode):
    """Health and metrics responses never set a cookie (session or CSRF)."""

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if is_probe(request.path):
            response.cookies.clear()
        return response
