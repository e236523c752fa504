"""One write transaction at a time per process, queued in Python, not in SQLite.

SQLite has one write lock per database file; a connection that wants it while
another holds it polls (busy_timeout) with sleeps that grow to 100 ms, so with a
hundred request threads waiting the lock is handed out at random, a waiter can
miss it for the whole timeout ("database is locked", a 503), and a holder that
waits for the GIL between its statements keeps every other process waiting too.
The gate makes the threads of one process wait for each other on a condition
variable instead (woken when the gate opens); only one thread per process then
asks SQLite for the lock, so the processes share it between them.

The gate is reentrant for the thread that holds it (a second connection of the
same thread cannot deadlock on it) and can be opened from any thread (a
connection closed elsewhere). Waiting is bounded by the connection's busy
timeout, after which the caller gets the same OperationalError as from SQLite.
"""

from __future__ import annotations

import threading


class WriterGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self, timeout: float) -> bool:
        """Enter the gate within ``timeout`` seconds; False when it stayed shut."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            if not self._cond.wait_for(lambda: self._owner is None, timeout):
                return False
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._cond:
            self._depth -= 1
            if self._depth <= 0:
                self._owner, self._depth = None, 0
                self._cond.notify()

    def holder(self) -> int | None:
        with self._cond:
            return self._owner


GATE = WriterGate()
