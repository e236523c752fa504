"""Django's MiddlewareMixin classes with their hooks run on the event loop (ASGI only).

Under ASGI, Django's ``MiddlewareMixin`` runs each ``process_request`` and
``process_response``, and the handler each sync ``process_view``, through
``sync_to_async``: about 14 thread hops per chat request, though most of those
hooks only read headers and settings. An allow-listed middleware gets an adapter
that runs its hooks inline and still sends a hook to the request's thread when, for
that request, the hook may touch the database (a session to save, messages to
store, a CSRF check that reads the body or the session). The allow-list names,
per middleware, when that is: a middleware without an entry cannot be adapted
(``ImproperlyConfigured``), so adding one is a reviewed change (a hook doing I/O on
the loop would stall every request of the process; the ORM refuses outright with
SynchronousOnlyOperation).

For the chat message endpoint on SQLCipher the request's executor is a
``LoopExecutor`` (stepsync.loop_database): such a hook then runs on the loop too,
under the same rule as the view's database work.

``settings.MIDDLEWARE`` keeps Django's own paths (the deploy checks look for them):
the ASGI handler (stepsync.asgi_handler) resolves the allow-listed paths to their
adapters when it builds its chain. The sync stack (WSGI, the test client) is
unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _never(*args: Any) -> bool:
    return False


def _session_to_save(request: HttpRequest, response: Any) -> bool:
    session = getattr(request, "session", None)
    return session is not None and bool(
        session.modified or settings.SESSION_SAVE_EVERY_REQUEST
    )


def _messages_to_store(request: HttpRequest, response: Any) -> bool:
    storage = getattr(request, "_messages", None)
    return storage is not None and bool(storage.used or storage.added_new)


def _csrf_in_session(request: HttpRequest) -> bool:
    return bool(settings.CSRF_USE_SESSIONS)


def _csrf_cookie_to_session(request: HttpRequest, response: Any) -> bool:
    return bool(
        settings.CSRF_USE_SESSIONS and request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
    )


def _csrf_check_reads_request(request: HttpRequest, callback: Any) -> bool:
    # An exempt view or a safe method is accepted from attributes alone; the real
    # check may read the body (request.POST) or the session.
    if getattr(request, "csrf_processing_done", False):
        return False
    if getattr(callback, "csrf_exempt", False):
        return False
    return request.method not in SAFE_METHODS


@dataclass(frozen=True)
class InlinePolicy:
    """When each hook of one middleware must still run in the request's thread."""

    request_in_thread: Callable[[HttpRequest], bool] = _never
    view_in_thread: Callable[[HttpRequest, Any], bool] = _never
    response_in_thread: Callable[[HttpRequest, Any], bool] = _never


# The allow-list: every hook of these classes was read for I/O (Django 5.2,
# django-csp 4.0); the predicates name the requests whose hook may do some.
INLINE_POLICIES: dict[str, InlinePolicy] = {
    "django.middleware.security.SecurityMiddleware": InlinePolicy(),
    "django.contrib.sessions.middleware.SessionMiddleware": InlinePolicy(
        response_in_thread=_session_to_save
    ),
    "django.middleware.common.CommonMiddleware": InlinePolicy(),
    "django.middleware.csrf.CsrfViewMiddleware": InlinePolicy(
        request_in_thread=_csrf_in_session,
        view_in_thread=_csrf_check_reads_request,
        response_in_thread=_csrf_cookie_to_session,
    ),
    # Installs a lazy request.user; loading it (a database read) happens later.
    "django.contrib.auth.middleware.AuthenticationMiddleware": InlinePolicy(),
    "django.contrib.messages.middleware.MessageMiddleware": InlinePolicy(
        response_in_thread=_messages_to_store
    ),
    "django.middleware.clickjacking.XFrameOptionsMiddleware": InlinePolicy(),
    # django-csp's (its hooks read settings only), with the settings' policy cached.
    "stepsync.middleware_csp.CSPMiddleware": InlinePolicy(),
}


async def _run(hook: Callable[..., Any], in_thread: bool, *args: Any) -> Any:
    if in_thread:
        return await sync_to_async(hook, thread_sensitive=True)(*args)
    return hook(*args)


class InlineHooks:
    """Mixin placed before a MiddlewareMixin class: its hooks run inline in async
    mode unless the policy sends them to the request's thread."""

    policy: ClassVar[InlinePolicy]
    async_mode: bool
    get_response: Callable[[HttpRequest], Any]

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)  # type: ignore[call-arg]  # MiddlewareMixin follows in the MRO
        if self.async_mode and hasattr(self, "process_view"):
            # An instance attribute: Django sees a coroutine function and calls
            # it as is instead of wrapping the sync hook in sync_to_async.
            self.process_view = self._aprocess_view

    async def __acall__(self, request: HttpRequest) -> Any:
        response = None
        hook = getattr(self, "process_request", None)
        if hook is not None:
            response = await _run(hook, self.policy.request_in_thread(request), request)
        response = response or await self.get_response(request)
        hook = getattr(self, "process_response", None)
        if hook is not None:
            in_thread = self.policy.response_in_thread(request, response)
            response = await _run(hook, in_thread, request, response)
        return response

    async def _aprocess_view(
        self, request: HttpRequest, callback: Any, args: Any, kwargs: Any
    ) -> Any:
        # The class's own hook: the instance attribute is this method.
        hook = getattr(type(self), "process_view").__get__(self)  # noqa: B009 - instance attribute shadows it
        in_thread = self.policy.view_in_thread(request, callback)
        return await _run(hook, in_thread, request, callback, args, kwargs)


@cache
def inline_class(path: str) -> type[MiddlewareMixin]:
    """The adapter of the allow-listed MiddlewareMixin class at ``path``.

    Raises ImproperlyConfigured for a path that is not on the allow-list, or that
    is not a MiddlewareMixin class.
    """
    policy = INLINE_POLICIES.get(path)
    if policy is None:
        raise ImproperlyConfigured(
            f"{path} is not on the inline middleware allow-list "
            "(stepsync.middleware_inline.INLINE_POLICIES)"
        )
    base = import_string(path)
    if not (isinstance(base, type) and issubclass(base, MiddlewareMixin)):
        raise ImproperlyConfigured(f"{path} is not a MiddlewareMixin class")
    namespace = {
        "policy": policy,
        "__module__": __name__,
        "__qualname__": base.__name__,
    }
    return type(base.__name__, (InlineHooks, base), namespace)


def resolve_middleware(path: str) -> Any:
    """What the ASGI handler loads for a MIDDLEWARE entry: the adapter of an
    allow-listed class, anything else as Django would."""
    if path in INLINE_POLICIES:
        return inline_class(path)
    return import_string(path)
