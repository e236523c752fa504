"""JSON API for accounts: sign-up and API tokens (login through axes, logout)."""

from __future__ import annotations

from typing import Any

from django.views.decorators.debug import sensitive_post_parameters
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from chat.api import ChatAPIView, _validated
from chat.serializers import (
    AccountSerializer,
    CredentialsSerializer,
    ErrorSerializer,
    TokenSerializer,
)
from chat.services_accounts import account_signup, api_token_issue, api_token_revoke
from compliance.exceptions import LockedOut
from compliance.services import login_attempt

ERRORS = {400: ErrorSerializer, 403: ErrorSerializer, 413: ErrorSerializer}


class RegisterView(ChatAPIView):
    """Create an account (when ALLOW_SIGNUP is on); log in with /api/auth/token/."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=CredentialsSerializer,
        responses={201: AccountSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _validated(CredentialsSerializer, request.data)
        user = account_signup(
            username=data["username"], password=data["password"], request=request
        )
        return Response({"id": user.pk, "username": user.username}, status=201)


class TokenView(ChatAPIView):
    """POST: exchange credentials for a token (axes counts failures). DELETE: logout."""

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "DELETE":
            return [IsAuthenticated()]
        return [AllowAny()]

    @extend_schema(
        request=CredentialsSerializer,
        responses={
            200: TokenSerializer,
            **ERRORS,
            401: ErrorSerializer,
            429: ErrorSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        data = _validated(CredentialsSerializer, request.data)
        try:
            user = login_attempt(
                request=request._request,
                username=data["username"],
                password=data["password"],
            )
        except LockedOut:
            body = {"error": "locked_out", "message": "Too many failed attempts."}
            return Response(body, status=429)
        if user is None:
            body = {"error": "invalid_credentials", "message": "Login failed."}
            return Response(body, status=401, headers={"WWW-Authenticate": "Token"})
        return Response({"token": api_token_issue(user=user)})

    @extend_schema(request=None, responses={204: None, 403: ErrorSerializer})
    def delete(self, request: Request) -> Response:
        api_token_revoke(user=request.user, request=request._request)
        return Response(status=204)


register = sensitive_post_parameters("password")(RegisterView.as_view())
token = sensitive_post_parameters("password")(TokenView.as_view())
