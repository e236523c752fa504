"""Account use cases the chat front-ends share: sign-up, API tokens, password change
(each audited).

Lives in chat because accounts sits below compliance (it cannot audit) and the web
UI and the API must sign people up the same way.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables
from rest_framework.authtoken.models import Token

from accounts.models import normalize_username
from chat.exceptions import SignupClosed, SignupInvalid
from compliance.models import AuditAction
from compliance.services import audit_record

USERNAME_MAX_CHARS = 150
PASSWORD_MAX_CHARS = 1024  # checked before hashing: a 1 MB password is a DoS


@sensitive_variables("password")
def account_signup(
    *, username: str, password: str, request: HttpRequest | None = None
) -> Any:
    """Create an active user; raises SignupClosed or SignupInvalid (field names only).

    Usernames are unique regardless of case. Django's password validators apply;
    their fixed hints are returned, never the submitted values. Audits USER_SIGNUP.
    """
    if not settings.ALLOW_SIGNUP:
        raise SignupClosed()
    username = normalize_username(username)
    _check_username(username)
    candidate = get_user_model()(username=username)
    _check_password(password, candidate)
    user_model = get_user_model()
    if user_model.objects.username_taken(username):
        raise SignupInvalid(["username"], ["This username is not available."])
    try:
        with transaction.atomic():
            user = user_model.objects.create_user(username=username, password=password)
    except IntegrityError:
        raise SignupInvalid(["username"], ["This username is not available."]) from None
    audit_record(
        action=AuditAction.USER_SIGNUP,
        actor=user,
        target_type="user",
        target_id=user.pk,
        request=request,
    )
    return user


def _check_username(username: str) -> None:
    if not username or len(username) > USERNAME_MAX_CHARS:
        raise SignupInvalid(["username"])
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        raise SignupInvalid(
            ["username"], ["Use letters, digits and @/./+/-/_ only."]
        ) from None


@sensitive_variables("password")
def _check_password(password: str, candidate: Any) -> None:
    if not password or len(password) > PASSWORD_MAX_CHARS or "\x00" in password:
        raise SignupInvalid(["password"])
    try:
        password_validation.validate_password(password, user=candidate)
    except ValidationError as exc:
        raise SignupInvalid(["password"], [str(m) for m in exc.messages]) from None


def api_token_issue(*, user: Any) -> str:
    """The user's API token (created on first use). The login itself was audited
    by the authentication signal."""
    token, _ = Token.objects.get_or_create(user=user)
    return str(token.key)


def api_token_revoke(*, user: Any, request: HttpRequest | None = None) -> None:
    """Delete the user's API token (API logout); audits LOGOUT."""
    Token.objects.filter(user=user).delete()
    audit_record(
        action=AuditAction.LOGOUT,
        actor=user,
        target_type="user",
        target_id=user.pk,
        request=request,
    )


def password_changed(*, user: Any, request: HttpRequest | None = None) -> None:
    """Record a completed password change (Django's view did the change)."""
    audit_record(
        action=AuditAction.PASSWORD_CHANGE,
        actor=user,
        target_type="user",
        target_id=user.pk,
        request=request,
    )
