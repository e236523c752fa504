"""DRF exception handler: every API error becomes ``{"error": code, "message": text}``."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

# Fixed, content-free messages: DRF's own texts can echo parts of the request body.
SAFE_MESSAGES = {
    "parse_error": "The request body is not valid JSON.",
    "unsupported_media_type": "Send the request body as application/json.",
    "not_authenticated": "Authentication is required.",
    "authentication_failed": "Authentication failed.",
    "permission_denied": "You do not have permission to do this.",
    "not_found": "Not found.",
    "method_not_allowed": "Method not allowed.",
    "not_acceptable": "Not acceptable.",
    "throttled": "Too many requests. Try again later.",
    "invalid": "The request is not valid.",
}


def _code_for(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    return str(exc.default_code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map exceptions to the project's JSON error shape; database faults become 503."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, DatabaseError):
        logger.error("api.database_error type=%s", type(exc).__name__)
        unavailable = {
            "error": "unavailable",
            "message": "Service temporarily unavailable.",
        }
        return Response(unavailable, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    code = _code_for(exc)
    body: dict[str, Any] = {"error": code, "message": SAFE_MESSAGES.get(code, "Error.")}
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        body["fields"] = sorted(str(name) for name in exc.detail)
    response.data = body
    return response
