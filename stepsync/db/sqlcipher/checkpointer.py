"""WAL checkpoints in a background thread of each server process, not in a COMMIT.

SQLite checkpoints the write-ahead log inside the COMMIT that takes it past
``wal_autocheckpoint`` pages: that commit copies the pages back into the database
file and syncs both, 20 ms and more on this machine (1 commit in 1,000 of a
3-row transaction: p99.9 20 ms, against 0.6 ms without), while its thread still
holds the process's writer gate, so every writer of the process waits behind
it. Server processes (stepsync.asgi) therefore switch the automatic checkpoint
off on their connections and run a PASSIVE checkpoint every
DATABASE_CHECKPOINT_SECONDS from this thread, on a connection of its own. A
PASSIVE checkpoint takes no write lock: writers carry on while it copies and
syncs, and it copies only what no reader still needs.
"""

from __future__ import annotations

import logging
import threading

from django.db import connection

logger = logging.getLogger(__name__)

_running: Checkpointer | None = None


def active() -> bool:
    """True in a process whose checkpoints this module runs (new connections
    then leave them to it)."""
    return _running is not None and _running.is_alive()


def checkpoint() -> tuple[int, int, int]:
    """One PASSIVE checkpoint on this thread's connection: (busy, frames in the
    log, frames copied), as ``PRAGMA wal_checkpoint`` reports them."""
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        busy, log, copied = cursor.fetchone()
    return int(busy), int(log), int(copied)


class Checkpointer(threading.Thread):
    """Checkpoints every ``interval`` seconds until ``stop()``."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="wal-checkpointer", daemon=True)
        self.interval = interval
        self.rounds = 0  # checkpoints done
        self.last: tuple[int, int, int] | None = None  # the last one's result
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.wait(self.interval):
                try:
                    self.last = checkpoint()
                    self.rounds += 1
                except Exception:  # loop boundary: the next round tries again
                    logger.exception("db.checkpoint_failed")
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def start(interval: float) -> Checkpointer | None:
    """Start this process's checkpointer (once); None when ``interval`` is 0 or
    the database is not SQLite."""
    global _running
    if interval <= 0 or connection.vendor != "sqlite":
        return None
    if _running is None or not _running.is_alive():
        _running = Checkpointer(interval)
        _running.start()
    return _running


def stop() -> None:
    """Stop this process's checkpointer; connections opened later checkpoint
    automatically again."""
    global _running
    if _running is not None:
        _running.stop()
        _running = None
