"""django-axes hooks: how usernames are compared, and the lockout response.

The response reveals nothing: no username, no attempt count, no remaining time.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from compliance.auth_events import normalise_username

STATUS = 429
MESSAGE = "Too many attempts. Try again later."


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """AXES_USERNAME_CALLABLE: one counter per username whatever its case or spacing."""
    if credentials:
        return normalise_username(credentials.get("username"))
    data = getattr(request, "POST", None) or {}
    return normalise_username(data.get("username"))


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: a generic 429, JSON under /api/, a plain page elsewhere."""
    if request.path.startswith("/api/"):
        body = {"error": "locked_out", "message": MESSAGE}
        return JsonResponse(body, status=STATUS)
    return render(
        request, "compliance/lockout.html", {"message": MESSAGE}, status=STATUS
    )
