"""Short database work run on the event loop itself, on the embedded database.

The chat message view's two database phases (chat/api_messages.py) are short
SQLCipher work that holds the GIL for nearly all of its time: a thread gives them
no concurrency, only a hop there and back. On this VM a hop after an idle pause
costs ~0.3-0.6 ms of CPU (context switches and the GIL handed over each way;
bench/bench_wake.py), so ~1.2 ms per LLM-answered message. Measured with
``make bench-load``, one run each, alternating, same host:

- overhead-100: 12.4 and 13.0 ms of server CPU per message in a thread, 11.4 and
  11.5 inline;
- stream-300: 15.1 -> 14.0 ms per message, time to first event unchanged;
- llm-300: CPU unchanged (9.1 / 9.2 ms), P99 534 -> 527 ms;
- rules-100 (with the executor below): 6.0 / 5.7 ms -> 5.7 / 5.6, P99 21 / 32 ->
  17 / 16 ms.

So ``run_database_work`` runs the call inline when every database is SQLCipher
and the shared state lives in it (no network anywhere in the call). Django's
async-safety guard is lifted for that call only: the running loop is hidden from
this thread while the call runs (no other coroutine of the loop can run
meanwhile, so none can observe it), then restored. The call uses the loop
thread's own connection, checked after each call as Django checks a request
thread's at the end of a request.

Django's own calls for such a request (``response.close()``, which sends
request_finished, and any middleware hook that needs the database) go through the
request's thread-sensitive executor: ``LoopExecutor`` runs them inline under the
same rule. That spared the last hop of each message: bench_turn llm --gap-ms 130,
alternating, 10.95 / 11.67 / 10.70 ms per turn with a thread, 10.58 / 9.51 / 10.16
inline.

The call goes to the request's thread, as before:

- when another thread of this process holds the writer gate (an admin save, a
  turn that was sent to a thread): waiting for that thread is a thread's job;
- on PostgreSQL, or with Redis: each statement is a network round trip, during
  which the loop should serve other requests;
- when ``INLINE_DATABASE_WORK`` is off.

A write that meets another process's lock waits on the loop as it would in a
thread: polled every 0.5 ms, bounded by DATABASE_BUSY_TIMEOUT_MS (then the same
503). The other worker's write transactions last ~1 ms; and while a thread
waited, every other writer of its process already waited behind the gate.
Reads never wait (WAL).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.core.signals import setting_changed
from django.db import connections
from django.dispatch import receiver

from stepsync.db.sqlcipher.writer_gate import GATE

T = TypeVar("T")

SQLCIPHER_ENGINE = "stepsync.db.sqlcipher"


@functools.cache
def inline_allowed() -> bool:
    """Whether database work may run on the loop in this configuration."""
    databases = settings.DATABASES.values()
    return (
        bool(settings.INLINE_DATABASE_WORK)
        and all(database["ENGINE"] == SQLCIPHER_ENGINE for database in databases)
        and not settings.REDIS_URL
    )


@receiver(setting_changed)
def _configuration_changed(*, setting: str, **kwargs: object) -> None:
    if setting in {"INLINE_DATABASE_WORK", "DATABASES", "REDIS_URL"}:
        inline_allowed.cache_clear()


def gate_open() -> bool:
    """No thread of this process is in a write transaction."""
    return GATE.holder() is None


async def run_database_work(fn: Callable[..., T], /, *args: Any) -> T:
    """``fn(*args)``, inline when allowed and the writer gate is open, else in
    the request's thread (``sync_to_async``)."""
    if inline_allowed() and gate_open():
        return call_inline(fn, *args)
    return await sync_to_async(fn)(*args)


class LoopExecutor(Executor):
    """A request's thread-sensitive executor (asgiref) that runs each call inline
    on the loop's thread, or on ``thread`` (the request's lent thread) while
    another thread holds the writer gate. For requests where ``inline_allowed``."""

    def __init__(self, thread: Executor) -> None:
        self.thread = thread

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if not gate_open():
            return self.thread.submit(fn, *args, **kwargs)
        future: Future[T] = Future()
        marks = dict(SyncToAsync.threadlocal.__dict__)
        try:
            future.set_result(call_inline(fn, *args, **kwargs))
        except BaseException as exc:  # handed to the awaiting coroutine, as a thread's
            future.set_exception(exc)
        finally:
            # asgiref marks the thread it ran on as a sync thread under this loop;
            # the loop's own thread gets its marks back (left marked, AsyncToSync
            # there would wait for the loop from the loop).
            SyncToAsync.threadlocal.__dict__.clear()
            SyncToAsync.threadlocal.__dict__.update(marks)
        return future


def call_inline(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on this thread, its running loop hidden meanwhile."""
    loop = asyncio.get_running_loop()
    asyncio.events._set_running_loop(None)  # what Django's async_unsafe looks for
    try:
        return fn(*args, **kwargs)
    finally:
        try:
            _close_unusable_connections()
        finally:
            asyncio.events._set_running_loop(loop)


def _close_unusable_connections() -> None:
    """Django's end-of-request check (close_old_connections) for this thread's
    connections: a broken one, or one past CONN_MAX_AGE, is closed. Skipped
    inside a caller's transaction (a test's), as Django's test client does."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
