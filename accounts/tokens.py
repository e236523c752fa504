"""API token authentication: DRF's, with the lookup done by prepared statements.

Every API call authenticates, so DRF's ``select_related`` query (compiled anew
on each request) was one of the chat turn's larger costs; the rules are DRF's own:
an unknown key or an inactive user is refused with the same messages.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from stepsync.db import statements


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>`` as in DRF, one prepared read per request (the
    token joined with its user)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        token = statements.select_one_joined(Token, "user", [("key", "=", key)])
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return token.user, token
