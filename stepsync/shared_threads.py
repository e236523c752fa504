"""A few request threads per process shared by the views that only do short
database work in them (the chat message endpoint), instead of a thread each.

Measured with bench/bench_load.py (10 users sending back to back, 2 workers): with
a thread per request in flight, 12 to 14 ms of server CPU per LLM-answered message
and 100 to 120 msg/s; with the message endpoint's calls on 2 shared threads per
process, 11 ms and 130 to 135 msg/s (overhead-100 at 300 users: P99 742 ms before,
564 ms after). Threads that each hold a connection contend for the GIL and the
writer gate; and, inferred from a micro-benchmark rather than measured in the
server, SQLite empties a connection's page cache when another connection has
written, so each connection decrypts its pages again (HMAC-SHA512 is ~9 % of a
loaded worker's CPU in perf).

A view opts in with ``@shares_threads`` when its synchronous calls are short
(no call waits on the network for long: the LLM is awaited on the event loop). A
request of such a view is lent the shared thread with the fewest calls queued, for
its whole life (its calls keep Django's one-thread-per-request order); calls of
requests that share a thread run one after another. A thread whose current call
has run for STUCK_SECONDS (a writer waiting out the busy timeout) is passed over;
when every shared thread is, the request gets a thread of its own, as every other
view does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

STUCK_SECONDS = 0.5
ATTRIBUTE = "shares_request_threads"


def shares_threads(view: F) -> F:
    """Mark ``view``: its calls into threads are short database work."""
    setattr(view, ATTRIBUTE, True)
    return view


def view_shares_threads(view: Any) -> bool:
    return bool(getattr(view, ATTRIBUTE, False))


class SharedExecutor(ThreadPoolExecutor):
    """A single-thread executor that counts its queued calls and knows since when
    its current one runs."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="shared-request")
        self._lock = threading.Lock()
        self.queued = 0
        self.running_since: float | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            self.queued += 1
        return super().submit(self._run, fn, args, kwargs)

    def _run(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        self.running_since = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            self.running_since = None
            with self._lock:
                self.queued -= 1

    def stuck(self, now: float, after: float = STUCK_SECONDS) -> bool:
        since = self.running_since
        return since is not None and now - since >= after


class SharedThreads:
    """``count`` shared executors; ``pick()`` the least queued that is not stuck."""

    def __init__(self, count: int, stuck_after: float = STUCK_SECONDS) -> None:
        self.executors = [SharedExecutor() for _ in range(count)]
        self.stuck_after = stuck_after

    def pick(self) -> SharedExecutor | None:
        now = time.monotonic()
        usable = [e for e in self.executors if not e.stuck(now, self.stuck_after)]
        return min(usable, key=lambda e: e.queued, default=None)

    def owns(self, executor: ThreadPoolExecutor) -> bool:
        return isinstance(executor, SharedExecutor) and executor in self.executors

    def shutdown(self, before: Callable[[], None]) -> None:
        """Run ``before`` (closing the connections) on each thread, then end it."""
        for executor in self.executors:
            executor.submit(before).result()
            executor.shutdown(wait=True)
