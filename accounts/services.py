"""Account use cases: deactivation and ending a user's sessions (sign-up: chat)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.models import Session
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User


def user_sessions_end(*, user: AbstractBaseUser) -> int:
    """Delete every stored session that belongs to ``user``; returns how many.

    Database sessions are not indexed by user, so the unexpired ones are decoded
    one by one; deactivation is rare and this keeps the session table standard.
    """
    ended = 0
    user_id = str(user.pk)
    live = Session.objects.filter(expire_date__gt=timezone.now())
    for session in live.iterator():
        if str(session.get_decoded().get("_auth_user_id", "")) == user_id:
            session.delete()
            ended += 1
    return ended


def user_deactivate(
    *, user: User, actor: User | None, request: HttpRequest | None = None
) -> int:
    """Deactivate ``user``, end all their sessions and API tokens; audited.

    Returns the number of sessions ended. Idempotent: deactivating an inactive
    user only ends any sessions or tokens that are left.
    """
    # compliance sits above accounts in the layering (compliance -> accounts), so
    # accounts reaches the audit service only at call time, never at import time.
    from rest_framework.authtoken.models import Token

    from compliance.models import AuditAction
    from compliance.services import audit_record

    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    user.is_active = False
    Token.objects.filter(user=user).delete()
    ended = user_sessions_end(user=user)
    audit_record(
        action=AuditAction.ACCOUNT_DEACTIVATED,
        actor=actor,
        target_type="user",
        target_id=user.pk,
        details={"sessions_ended": ended},
        request=request,
    )
    return ended
