"""Automatic logoff: idle timeout, absolute session lifetime, deactivated users."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import resolve_url
from django.utils import timezone

from compliance.models import AuditAction
from compliance.services import audit_record

logger = logging.getLogger(__name__)

LOGIN_AT_KEY = "stepsync_login_at"
LAST_SEEN_KEY = "stepsync_last_seen"
# Record activity at most this often, so that a busy page does not write the
# session row on every request; the idle timeout is minutes, so this is harmless.
TOUCH_EVERY_SECONDS = 30
# A server clock that moved back by more than this ends the session (fail-safe):
# otherwise a backward jump would stretch both timeouts.
CLOCK_BACK_TOLERANCE_SECONDS = 300
EXPIRED_MESSAGE = (
    "You were logged out after a period of inactivity. Please log in again."
)
LIFETIME_MESSAGE = "Your session reached its maximum length. Please log in again."
# Health probes and the metrics scrape are not user activity: they must neither
# refresh a session's idle clock nor end it (no redirect, no audit row).
PROBE_PATHS = frozenset({"/health", "/metrics", "/metrics/"})


def is_probe(path: str) -> bool:
    """True for /health/* and /metrics (the monitoring endpoints)."""
    return path in PROBE_PATHS or path.startswith("/health/")


def expiry_reason(session: Any, *, now: float) -> str:
    """'' while the session is within its limits, else a reason code."""
    login_at = float(session.get(LOGIN_AT_KEY, now))
    last_seen = float(session.get(LAST_SEEN_KEY, login_at))
    if now + CLOCK_BACK_TOLERANCE_SECONDS < last_seen:
        return "clock_moved_back"
    if now - login_at >= settings.SESSION_ABSOLUTE_TIMEOUT_HOURS * 3600:
        return "absolute"
    if now - last_seen >= settings.SESSION_IDLE_TIMEOUT_MINUTES * 60:
        return "idle"
    return ""


class SessionTimeoutMiddleware:
    """Ends expired sessions on the server, audits it, and sends the user to login.

    Runs after AuthenticationMiddleware and MessageMiddleware. Session
    authentication only: API token clients carry no session. Times come from the
    server clock; the login time is stored in the session by the response that
    logs the user in (or, for a session made elsewhere, at its first request).
    """

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if is_probe(request.path):
            return self.get_response(request)
        if self.is_async:
            return self._acall(request)
        response = self.check(request) or self.get_response(request)
        self.stamp_login(request)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            # Session and user loading touch the database: run them in a thread.
            early = await sync_to_async(self.check)(request)
            if early is not None:
                return early
        response: HttpResponse = await self.get_response(request)
        self.stamp_login(request)
        return response

    def stamp_login(self, request: HttpRequest) -> None:
        """Record the login time in the response that logged the user in."""
        session = getattr(request, "session", None)
        # Only a session this request already loaded: no extra database read.
        if session is None or not session.accessed or SESSION_KEY not in session:
            return
        if LOGIN_AT_KEY not in session:
            now = timezone.now().timestamp()
            session[LOGIN_AT_KEY] = now
            session[LAST_SEEN_KEY] = now

    def check(self, request: HttpRequest) -> HttpResponse | None:
        session = request.session
        if SESSION_KEY not in session:
            return None
        user = request.user
        if not user.is_authenticated:
            # The session names a user whom the backend refused (deactivated,
            # deleted): end it on the server rather than keep it around.
            session.flush()
            return None
        now = timezone.now().timestamp()
        reason = expiry_reason(session, now=now)
        if reason:
            return self._expire(request, reason)
        session.setdefault(LOGIN_AT_KEY, now)
        if now - float(session.get(LAST_SEEN_KEY, 0)) >= TOUCH_EVERY_SECONDS:
            session[LAST_SEEN_KEY] = now
        return None

    def _expire(self, request: HttpRequest, reason: str) -> HttpResponse:
        user = request.user
        audit_record(
            action=AuditAction.SESSION_EXPIRED,
            actor=user,  # type: ignore[arg-type]  # only called for an authenticated user
            target_type="user",
            target_id=user.pk or "",
            details={"reason": reason},
            request=request,
        )
        logger.info("session.expired user=%s reason=%s", user.pk, reason)
        logout(request)
        text = LIFETIME_MESSAGE if reason == "absolute" else EXPIRED_MESSAGE
        if request.path.startswith("/api/") or _wants_json(request):
            body = {"error": "session_expired", "message": text}
            return JsonResponse(body, status=401)
        messages.info(request, text)
        login_url = resolve_url(settings.LOGIN_URL)
        query = urlencode({"next": request.get_full_path()})
        if request.method != "GET":
            query = ""
        return HttpResponseRedirect(f"{login_url}?{query}" if query else login_url)


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept or "text/event-stream" in accept
