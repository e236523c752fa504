"""Health and metrics endpoints: GET only, no cookies, no audit rows, never a traceback."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from chat.middleware import expiry_reason
from ops import health, metrics


def bearer_matches(request: HttpRequest, expected: str) -> bool:
    """Constant-time check of ``Authorization: Bearer <token>``; False when unset."""
    if not expected:
        return False
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def may_see_details(request: HttpRequest) -> bool:
    """Staff session or the health token. A session lookup that fails, or a session
    past its idle or absolute limit (probes do not end it, see chat.middleware),
    counts as no."""
    if bearer_matches(request, settings.HEALTH_CHECK_TOKEN):
        return True
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False
    try:
        user = request.user
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return False
        now = timezone.now().timestamp()
        return not expiry_reason(request.session, now=now)
    except (DatabaseError, ImproperlyConfigured):
        return False


def _json(body: dict, status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@require_GET
def live(request: HttpRequest) -> HttpResponse:
    return _json({"status": "alive"})


@never_cache
@require_GET
def ready(request: HttpRequest) -> HttpResponse:
    ok, reason = health.readiness()
    body = {"status": "ready" if ok else "not_ready"}
    if not ok and may_see_details(request):
        body["reason"] = reason
    return _json(body, status=200 if ok else 503)


@never_cache
@require_GET
def status(request: HttpRequest) -> HttpResponse:
    report = health.health_report(now=timezone.now(), details=may_see_details(request))
    return _json(report, status=503 if report["status"] == health.DOWN else 200)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_TOKEN:
        raise Http404
    if not bearer_matches(request, settings.METRICS_TOKEN):
        response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(metrics.render_metrics(), content_type=metrics.CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
