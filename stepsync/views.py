"""Project-level pages: the start page and JSON-aware error handlers."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

ERROR_TEXT = {
    400: ("bad_request", "The request could not be processed."),
    403: ("forbidden", "You do not have permission to do this."),
    404: ("not_found", "Not found."),
    500: ("server_error", "Something went wrong on our side."),
}


def home(request: HttpRequest) -> HttpResponse:
    """Signed-in users go to their conversations; others see the start page."""
    if request.user.is_authenticated:
        return redirect("chat:conversation-list")
    context = {"allow_signup": settings.ALLOW_SIGNUP}
    return render(request, "stepsync/home.html", context)


def _error(request: HttpRequest, status: int) -> HttpResponse:
    """A generic error with the request id; JSON under /api/, HTML elsewhere."""
    code, message = ERROR_TEXT[status]
    request_id = getattr(request, "request_id", "")
    if request.path.startswith("/api/"):
        body = {"error": code, "message": message, "request_id": request_id}
        return JsonResponse(body, status=status)
    context = {"status": status, "message": message, "request_id": request_id}
    return render(request, "stepsync/error.html", context, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    return _error(request, 500)
