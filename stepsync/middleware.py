"""Project-wide middleware; every class here is async-capable (PERFORMANCE.md rule d)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware

from stepsync.request_context import request_id_var

REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{8,64}")


class _DualMode:
    """Base for middleware that runs natively in both sync and async stacks."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        return self.after(request, self.before(request) or self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        early = self.before(request)
        if early is not None:
            return self.after(request, early)
        return self.after(request, await self.get_response(request))

    def before(self, request: HttpRequest) -> HttpResponse | None:
        return None

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        return response


class RequestIdMiddleware(_DualMode):
    """Give each request an id (a safe inbound X-Request-ID or a new UUID) for logs."""

    def before(self, request: HttpRequest) -> HttpResponse | None:
        inbound = request.META.get(REQUEST_ID_HEADER, "")
        rid = inbound if SAFE_REQUEST_ID.fullmatch(inbound) else uuid.uuid4().hex
        request.request_id = rid  # type: ignore[attr-defined]  # read by error views and logs
        request_id_var.set(rid)
        return None

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response["X-Request-ID"] = getattr(request, "request_id", "")
        return response


class NoStoreMiddleware(_DualMode):
    """``Cache-Control: no-store`` for the API and every authenticated page."""

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        user = getattr(request, "user", None)
        authenticated = bool(user is not None and user.is_authenticated)
        if authenticated or request.path.startswith(("/api/", "/health", "/metrics")):
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"
        return response


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise that does not force the whole stack into a thread under ASGI."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any], **kw: Any) -> None:
        super().__init__(get_response, **kw)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        static_file = self._lookup(request.path_info)
        if static_file is not None:
            return self.serve(static_file, request)
        response: Awaitable[HttpResponse] = self.get_response(request)
        return await response

    def _lookup(self, path: str) -> Any:
        if self.autorefresh:
            return self.find_file(path)
        return self.files.get(path)
