"""Audit of authentication events: Django's auth signals and django-axes' lockouts.

Connected in ComplianceConfig.ready(). Usernames are never stored in the audit
trail: a failed login records ``pseudonym(normalised username)`` and, when the name
belongs to a user, that user's id as the target. django-axes' attempt rows keep no
request data either (see ``drop_attempt_request_data``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.utils import timezone

from compliance.login_throttle import ip_failure_record
from compliance.models import AuditAction, AuditOutcome
from compliance.services import audit_record, pseudonym

AXES = "axes"
# Set on a request once its login was audited, so login() after login_attempt()
# on the same request does not write a second LOGIN row.
AUDITED_FLAG = "_compliance_login_audited"


def normalise_username(value: Any) -> str:
    """How usernames are compared for lockouts and pseudonyms: stripped, lower-case."""
    return str(value or "").strip().lower()


def _channel(request: HttpRequest | None) -> str:
    path = getattr(request, "path", "") or ""
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/admin/"):
        return "admin"
    return "web" if request is not None else "none"


def _user_id_for(username: str) -> int | None:
    if not username:
        return None
    model = get_user_model()
    return (
        model.objects.filter(username__iexact=username)
        .values_list("pk", flat=True)
        .first()
    )


def _subject(username: str) -> dict[str, Any]:
    user_id = _user_id_for(username)
    return {"target_type": "user", "target_id": user_id} if user_id else {}


def on_logged_in(
    sender: Any, request: HttpRequest | None, user: Any, **kw: Any
) -> None:
    if request is not None and getattr(request, AUDITED_FLAG, False):
        return
    audit_record(
        action=AuditAction.LOGIN,
        actor=user,
        target_type="user",
        target_id=user.pk,
        details={"channel": _channel(request)},
        request=request,
    )
    if request is not None:
        setattr(request, AUDITED_FLAG, True)


def on_logged_out(
    sender: Any, request: HttpRequest | None, user: Any, **kw: Any
) -> None:
    if user is None:
        return
    audit_record(
        action=AuditAction.LOGOUT,
        actor=user,
        target_type="user",
        target_id=user.pk,
        details={"channel": _channel(request)},
        request=request,
    )


def on_login_failed(
    sender: Any,
    credentials: dict[str, Any],
    request: HttpRequest | None = None,
    **kw: Any,
) -> None:
    username = normalise_username(credentials.get("username"))
    if request is not None and ip_failure_record(request):
        # The failure that locks the IP gets the lockout response, as with axes.
        request.axes_locked_out = True  # type: ignore[attr-defined]  # axes flag
    audit_record(
        action=AuditAction.LOGIN_FAILED,
        outcome=AuditOutcome.FAILURE,
        details={
            "username_ps": pseudonym(username),
            "blocked": bool(getattr(request, "axes_locked_out", False)),
            "channel": _channel(request),
        },
        request=request,
        **_subject(username),
    )


def on_locked_out(sender: Any, request: HttpRequest | None = None, **kw: Any) -> None:
    """Audit the moment of locking only: attempts refused while locked are LOGIN_FAILED.

    axes computes ``axes_failures_since_start`` only on the attempt that locks; the
    refused attempts during the cool-off leave it None.
    """
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is None:
        return
    username = normalise_username(kw.get("username"))
    audit_record(
        action=AuditAction.LOCKOUT,
        outcome=AuditOutcome.DENIED,
        system_principal=AXES,
        details={
            "username_ps": pseudonym(username),
            "failures": int(failures),
            "cooloff_minutes": int(settings.AXES_COOLOFF_MINUTES),
        },
        request=request,
        **_subject(username),
    )


def on_attempt_deleted(sender: Any, instance: Any, **kw: Any) -> None:
    """A locked-out attempt record removed: cool-off expiry, axes_reset or the admin."""
    if int(instance.failures_since_start or 0) < int(settings.AXES_FAILURE_LIMIT):
        return
    cooloff = dt.timedelta(minutes=int(settings.AXES_COOLOFF_MINUTES))
    expired = instance.attempt_time is not None and (
        instance.attempt_time <= timezone.now() - cooloff
    )
    username = normalise_username(instance.username)
    audit_record(
        action=AuditAction.UNLOCK,
        system_principal=AXES,
        details={
            "username_ps": pseudonym(username),
            "reason": "cooloff_expired" if expired else "reset",
        },
        **_subject(username),
    )


def drop_attempt_request_data(sender: Any, instance: Any, **kw: Any) -> None:
    """pre_save on AccessAttempt: store no GET or POST data.

    django-axes 8.3 writes the query string and form fields of every failed login
    (``get_data``, ``post_data``), masking only the password and
    AXES_SENSITIVE_PARAMETERS (username and ip_address by default); it has no
    setting to turn that off. Anything else a login form sends (a redirect target,
    a one-time code, fields added later) would be kept, so nothing is.
    """
    instance.get_data = ""
    instance.post_data = ""


def connect() -> None:
    """Connect the receivers (idempotent: each has a dispatch_uid)."""
    from axes.models import AccessAttempt
    from axes.signals import user_locked_out
    from django.contrib.auth import signals
    from django.db.models.signals import post_delete, pre_save

    signals.user_logged_in.connect(on_logged_in, dispatch_uid="compliance.login")
    signals.user_logged_out.connect(on_logged_out, dispatch_uid="compliance.logout")
    signals.user_login_failed.connect(on_login_failed, dispatch_uid="compliance.fail")
    user_locked_out.connect(on_locked_out, dispatch_uid="compliance.lockout")
    post_delete.connect(
        on_attempt_deleted, sender=AccessAttempt, dispatch_uid="compliance.unlock"
    )
    pre_save.connect(
        drop_attempt_request_data,
        sender=AccessAttempt,
        dispatch_uid="compliance.attempt_data",
    )
