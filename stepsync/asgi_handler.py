"""The ASGI handler: each request's thread-sensitive work runs on a reused thread.

Django's ASGIHandler gives every request a new single-thread executor, so a new OS
thread and, since database connections belong to a thread, a new connection: for
SQLCipher an open, a key check and the pragmas on every request, and CONN_MAX_AGE
never pays (bench/bench_turn.py measured about half of a rules turn's CPU there).
This handler lends each request a single-thread executor from a pool instead
(asgiref's ``ThreadSensitiveContext(executor=...)``), so threads and their
connections live on, as gunicorn's threaded workers keep theirs.

What does not change: one request at a time per executor and per connection. An
executor goes back to the pool only when its request is over; a call still running
then (a shielded clean-up of a cancelled request) runs before the next request's
calls, in order, on the same connection. Django's ``close_old_connections`` runs
on the lent thread at the end of every request (a connection left in a
transaction, broken or past CONN_MAX_AGE is closed there), and in server
processes no longer at its start (``connection_checks_at_request_end``): the
thread's connection was checked when its previous request ended, and each check
was a hop to the thread and back, one in four of an LLM message's. Executors beyond
MAX_IDLE_EXECUTORS close their connections and end when returned.

Views marked ``@shares_threads`` (stepsync.shared_threads) are lent one of
SHARED_REQUEST_THREADS shared threads instead: requests then share a thread and its
connection, one call at a time, in order. Where their database work runs on the
event loop (stepsync.loop_database), that thread is only the fallback of a
``LoopExecutor``.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core import signals
from django.core.cache import caches, close_caches
from django.core.cache.backends.base import BaseCache
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import setting_changed
from django.db import close_old_connections, connections, reset_queries
from django.dispatch import receiver
from django.urls import Resolver404, get_resolver

from stepsync.loop_database import LoopExecutor, inline_allowed
from stepsync.middleware_inline import resolve_middleware
from stepsync.shared_threads import SharedThreads, view_shares_threads

# Idle threads kept for reuse; a burst above this many requests in flight gets
# threads of its own that end with their request.
MAX_IDLE_EXECUTORS = 32


class ExecutorPool:
    """Single-thread executors lent to one request at a time (LIFO: few stay warm)."""

    def __init__(self, max_idle: int = MAX_IDLE_EXECUTORS, shared: int = 0) -> None:
        self.max_idle = max_idle
        self._idle: list[ThreadPoolExecutor] = []
        self._lock = threading.Lock()
        self.shared = SharedThreads(shared)

    def lease(self, shared: bool = False) -> ThreadPoolExecutor:
        """An executor for one request: a shared one when ``shared`` and one of
        them is not stuck, else one of its own."""
        if shared and (executor := self.shared.pick()) is not None:
            return executor
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        if self.shared.owns(executor):
            return
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(executor)
                return
        executor.submit(connections.close_all)
        executor.shutdown(wait=False)

    def close(self) -> None:
        """End the idle executors, their connections closed first (shutdown)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for executor in idle:
            executor.submit(connections.close_all).result()
            executor.shutdown(wait=True)
        self.shared.shutdown(connections.close_all)

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)


class ThreadLeasingASGIHandler(ASGIHandler):
    """Django's ASGI handler with the per-request executor lent from a pool, and
    the allow-listed middleware's hooks inline (stepsync.middleware_inline)."""

    def __init__(self, pool: ExecutorPool | None = None) -> None:
        self.pool = pool or ExecutorPool(shared=settings.SHARED_REQUEST_THREADS)
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        # Django resolves each MIDDLEWARE path with base.import_string while it
        # builds the chain (once, at start-up); MIDDLEWARE keeps Django's paths,
        # which the deploy checks look for.
        original = base.import_string  # type: ignore[attr-defined]  # imported there, not in the stubs
        base.import_string = resolve_middleware  # type: ignore[attr-defined]  # as above
        try:
            super().load_middleware(is_async)
        finally:
            base.import_string = original  # type: ignore[attr-defined]  # as above

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(
                f"Django can only handle ASGI/HTTP connections, not {scope['type']}."
            )
        shared = bool(self.pool.shared.executors) and _shares(scope)
        executor = self.pool.lease(shared=shared)
        try:
            on_loop = shared and inline_allowed()
            async with ThreadSensitiveContext(
                executor=LoopExecutor(executor) if on_loop else executor
            ):
                await self.handle(scope, receive, send)
        finally:
            self.pool.give_back(executor)


def connection_checks_at_request_end() -> None:
    """Move Django's per-request connection receivers from request_started to
    request_finished only (server processes). With no synchronous receiver left,
    ``request_started.asend`` needs no thread; request_finished runs in
    ``response.close()`` on the lent thread (or, for a cancelled request, in its
    ``asend``), where ``close_old_connections`` checks the connection the thread's
    next request will use.

    Two receivers that have nothing to do in a server process are left out:
    ``reset_queries`` empties the query log that only DEBUG keeps, and
    ``close_caches`` calls ``close()`` on caches whose ``close()`` does nothing
    (Django's Redis and local-memory caches). Each walked every connection or
    cache through asgiref's thread-critical locals on every request, ~2 % of a
    chat turn's GIL time (py-spy --gil, bench_turn)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_started.disconnect(reset_queries)
    if settings.DEBUG:
        signals.request_finished.connect(reset_queries)
    if all(type(caches[alias]).close is BaseCache.close for alias in settings.CACHES):
        signals.request_finished.disconnect(close_caches)


@receiver(setting_changed)
def _urlconf_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "ROOT_URLCONF":
        _path_shares.cache_clear()


def _shares(scope: dict[str, Any]) -> bool:
    """Whether the view at the request's path is marked @shares_threads."""
    return _path_shares(scope["path"])


@functools.lru_cache(maxsize=4096)
def _path_shares(path: str) -> bool:
    """Resolved once per path while it is among the 4,096 most recent (a user's
    messages go to one conversation's path); an unknown path is not shared."""
    try:
        match = get_resolver().resolve(path)
    except Resolver404:
        return False
    return view_shares_threads(match.func)
