"""IP-wide failed-login throttle: password spraying from one address is stopped.

django-axes locks a username, and a username+IP pair, after AXES_FAILURE_LIMIT
failures; a sprayer trying one password on many usernames never reaches either.
Here every failed login from a client IP (trusted proxy hops only, so a forged
X-Forwarded-For changes nothing) counts: at LOGIN_FAILURES_PER_IP failures within
LOGIN_FAILURES_PER_IP_WINDOW_MINUTES the IP is refused for one window, with the same
generic lockout response as axes, and the lock is audited as LOCKOUT. Attempts
refused during the lock are not counted, so the lock really ends. State lives in
stepsync.sharedstate under a pseudonym of the address, never the address itself.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from compliance.models import AuditAction, AuditOutcome
from compliance.services import audit_record, pseudonym
from stepsync.net import client_ip
from stepsync.sharedstate import SharedStateUnavailable, SharedStore, default_store

logger = logging.getLogger(__name__)

PRINCIPAL = "login_ip_throttle"
# Set on a request refused here, so its failure signal is not counted again.
REFUSED_FLAG = "_compliance_ip_refused"


def _window_seconds() -> float:
    return float(settings.LOGIN_FAILURES_PER_IP_WINDOW_MINUTES) * 60.0


def _keys(request: HttpRequest) -> tuple[str, str]:
    name = pseudonym(f"login_ip:{client_ip(request)}")
    return f"login:ipfail:{name}", f"login:iplock:{name}"


def _until(value: str) -> float:
    try:
        return float(json.loads(value)["until"])
    except (ValueError, KeyError, TypeError):
        return 0.0


def _active(until: float, now: float) -> bool:
    # A lock ending further ahead than it can (two windows: callers' clocks differ
    # a little) means the clock went back; treat it as ended, as sharedstate does.
    return now < until <= now + 2 * _window_seconds()


def ip_locked(
    request: HttpRequest, *, now: float | None = None, store: SharedStore | None = None
) -> bool:
    """Is the request's client IP refused right now? Fails open if the store is down.

    Failing open leaves axes' per-username lockout (in the database) in force.
    """
    if int(settings.LOGIN_FAILURES_PER_IP) <= 0:
        return False
    moment = time.time() if now is None else now
    _, lock_key = _keys(request)
    try:
        lock = (store or default_store()).read(lock_key)
    except SharedStateUnavailable:
        logger.warning("login_throttle.store_unavailable op=read")
        return False
    return _active(_until(lock.value), moment)


def ip_failure_record(
    request: HttpRequest, *, now: float | None = None, store: SharedStore | None = None
) -> bool:
    """Count one failed login from the request's IP; True when it locked the IP.

    The failure that reaches LOGIN_FAILURES_PER_IP within the window locks the IP
    for one window and writes one LOCKOUT audit event (scope "ip"; the address is in
    the event's client_ip column, no username). Concurrent failures lock it once.
    """
    limit = int(settings.LOGIN_FAILURES_PER_IP)
    if limit <= 0 or getattr(request, REFUSED_FLAG, False):
        return False
    store = store or default_store()
    moment = time.time() if now is None else now
    window = _window_seconds()
    fail_key, lock_key = _keys(request)
    try:
        counted = store.incr_within(
            fail_key, limit=limit, window_seconds=window, now=moment
        )
        if counted.allowed and counted.count < limit:
            return False
        lock = store.read(lock_key)
        if _active(_until(lock.value), moment):
            return False
        locked = store.compare_and_set(
            lock_key,
            expected_version=lock.version,
            value=json.dumps({"until": moment + window}),
        )
    except SharedStateUnavailable:
        logger.warning("login_throttle.store_unavailable op=count")
        return False
    if locked:
        audit_record(
            action=AuditAction.LOCKOUT,
            outcome=AuditOutcome.DENIED,
            system_principal=PRINCIPAL,
            details={
                "scope": "ip",
                "failures": limit,
                "window_minutes": int(settings.LOGIN_FAILURES_PER_IP_WINDOW_MINUTES),
            },
            request=request,
        )
        logger.warning("login_throttle.ip_locked failures=%d", limit)
    return locked


class IPThrottleBackend:
    """AUTHENTICATION_BACKENDS entry after axes': refuses every login from a locked IP.

    It never authenticates anyone. Raising PermissionDenied stops Django's
    authenticate() (which then sends user_login_failed); ``axes_locked_out`` makes
    axes' middleware answer with AXES_LOCKOUT_CALLABLE's response and
    compliance.services.login_attempt raise LockedOut, exactly as for an axes lock.
    No ``get_user``, like axes' backend: sessions and test clients' force_login
    must never pick this backend.
    """

    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> None:
        if request is None or not ip_locked(request):
            return None
        request.axes_locked_out = True  # type: ignore[attr-defined]  # axes flag
        setattr(request, REFUSED_FLAG, True)
        raise PermissionDenied("ip_locked")
