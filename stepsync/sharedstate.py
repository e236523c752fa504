"""Cross-process shared state: atomic counters and compare-and-set documents.

Two backends implement one interface (``SharedStore``):

- ``DatabaseStore`` (default): the ``stepsync_sharedstate`` table. Every decision is
  one conditional ``UPDATE`` (``SET n = n + 1 ... WHERE n < limit``), so it is atomic
  on SQLite (writes are serialised by the database lock) and on PostgreSQL (row lock).
- ``RedisStore`` (when ``REDIS_URL`` is set): Lua scripts, atomic on the Redis server.

Times are epoch seconds passed in by the caller (``now``), so tests drive them. A
window whose expiry lies further ahead than its own length means the wall clock went
back (by more than a window: callers' clocks differ a little) and it is treated as
expired, so a clock jump cannot freeze a counter.
Keys name things ("rl:user:42:msg"), never user content.

An unreachable store (Redis down or timing out, the database refusing with an
OperationalError) raises ``SharedStateUnavailable``, a fixed-message error that callers
turn into a policy: the rate limiter fails open for plain messages, LLM admission
fails closed to the rules fallback. Redis calls time out quickly (0.25 s to connect,
0.5 s per operation, one retry), and after a failure the store refuses at once for
``REDIS_COOLDOWN_SECONDS`` so that an outage costs each request no more than that.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from django.conf import settings
from django.db import OperationalError, connection, transaction

TABLE = "stepsync_sharedstate"
REDIS_CONNECT_TIMEOUT_SECONDS = 0.25
REDIS_SOCKET_TIMEOUT_SECONDS = 0.5
REDIS_COOLDOWN_SECONDS = 1.0
T = TypeVar("T")


class SharedStateUnavailable(Exception):
    """The shared-state store could not be reached; the message is fixed."""

    def __init__(self) -> None:
        super().__init__("shared_state_unavailable")
        self.code = "shared_state_unavailable"


@dataclass(frozen=True)
class Counted:
    """Result of a bounded increment: allowed or not, the count, the window's end."""

    allowed: bool
    count: int
    reset_at: float


@dataclass(frozen=True)
class Versioned:
    """A compare-and-set document: its JSON text ("" when absent) and version."""

    value: str
    version: int


class SharedStore(Protocol):
    """The interface both backends implement. ``transactional``: its writes join
    the caller's database transaction (and roll back with it)."""

    transactional: bool

    def incr_within(
        self,
        key: str,
        *,
        limit: int,
        window_seconds: float,
        now: float,
        refresh: bool = False,
    ) -> Counted: ...

    def decr(self, key: str) -> int: ...

    def read(self, key: str) -> Versioned: ...

    def compare_and_set(
        self, key: str, *, expected_version: int, value: str
    ) -> bool: ...

    def batch(self) -> contextlib.AbstractContextManager[None]: ...


class DatabaseStore:
    """Shared state in the default database (SQLite/SQLCipher or PostgreSQL).

    Every public method raises SharedStateUnavailable on an OperationalError (the
    database locked past its busy timeout, unreachable, or out of space).
    """

    transactional = True

    def incr_within(
        self,
        key: str,
        *,
        limit: int,
        window_seconds: float,
        now: float,
        refresh: bool = False,
    ) -> Counted:
        """Add 1 unless the window's count reached ``limit``; a stale window restarts.

        ``refresh`` pushes the expiry to ``now + window`` on every increment (used for
        in-flight counters: a crashed holder's slot frees after a quiet window).
        """
        return _on_database(
            lambda: self._incr_within(key, limit, window_seconds, now, refresh)
        )

    def decr(self, key: str) -> int:
        """Subtract 1, never below 0; returns the new count (0 when absent)."""
        sql = (
            f"UPDATE {TABLE} SET n = n - 1 "  # noqa: S608
            "WHERE key = %s AND n > 0 RETURNING n"
        )
        _, rows = _on_database(lambda: self._execute(sql, [key]))
        return int(rows[0][0]) if rows else 0

    def read(self, key: str) -> Versioned:
        row = _on_database(
            lambda: self._fetchone(
                f"SELECT value, version FROM {TABLE} WHERE key = %s",  # noqa: S608
                key,
            )
        )
        return Versioned("", 0) if row is None else Versioned(row[0], int(row[1]))

    def compare_and_set(self, key: str, *, expected_version: int, value: str) -> bool:
        """Write ``value`` only if the version is still ``expected_version``."""
        sql = (
            f"UPDATE {TABLE} SET value = %s, version = version + 1 "  # noqa: S608
            "WHERE key = %s AND version = %s"
        )

        def write() -> int:
            if expected_version == 0:
                self._ensure(key)
            rowcount, _ = self._execute(sql, [value, key, expected_version])
            return int(rowcount)

        return _on_database(write) == 1

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Run the operations of the block in one transaction (on SQLite, one take
        of the write lock instead of one per operation); an exception leaving the
        block undoes them all. A savepoint inside a caller's transaction."""
        try:
            with transaction.atomic():
                yield
        except OperationalError:
            raise SharedStateUnavailable() from None

    def _ensure(self, key: str) -> None:
        from stepsync.models import SharedState

        SharedState.objects.bulk_create([SharedState(key=key)], ignore_conflicts=True)

    def _execute(self, sql: str, params: list[Any]) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount, cursor.fetchall() if "RETURNING" in sql else []

    def _incr_within(
        self, key: str, limit: int, window_seconds: float, now: float, refresh: bool
    ) -> Counted:
        horizon = now + window_seconds
        # Callers' clocks differ by the time they waited for the write lock, so
        # "the clock went back" needs a whole window of slack to be believed.
        skewed = now + 2 * window_seconds
        stale = "(expires_at <= %s OR expires_at > %s)"
        sql = (
            f"UPDATE {TABLE} SET "  # noqa: S608 - table name is a constant
            f"n = CASE WHEN {stale} THEN 1 ELSE n + 1 END, "
            f"expires_at = CASE WHEN {stale} OR %s THEN %s ELSE expires_at END, "
            "touched_at = %s "
            f"WHERE key = %s AND ({stale} OR n < %s) RETURNING n, expires_at"
        )
        params = [
            now,
            skewed,
            now,
            skewed,
            refresh,
            horizon,
            now,
            key,
            now,
            skewed,
            limit,
        ]
        _, rows = self._execute(sql, params)
        if not rows:
            # The row may be missing, or another caller may have created it just
            # after this UPDATE ran: only an UPDATE against an existing row refuses.
            self._ensure(key)
            _, rows = self._execute(sql, params)
        if rows:
            return Counted(True, int(rows[0][0]), float(rows[0][1]))
        current = self._row(key)
        return Counted(False, *(current or (limit, horizon)))

    def _row(self, key: str) -> tuple[int, float] | None:
        row = self._fetchone(
            f"SELECT n, expires_at FROM {TABLE} WHERE key = %s",  # noqa: S608
            key,
        )
        return None if row is None else (int(row[0]), float(row[1]))

    def _fetchone(self, sql: str, key: str) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(sql, [key])
            return cursor.fetchone()


def _on_database(action: Callable[[], T]) -> T:
    try:
        return action()
    except OperationalError:
        raise SharedStateUnavailable() from None


_INCR_WITHIN = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
local window = tonumber(ARGV[2])
if ttl > 2 * window then
  redis.call('DEL', KEYS[1]); n = 0
end
if n >= tonumber(ARGV[1]) then
  return {0, n, ttl}
end
n = redis.call('INCR', KEYS[1])
if n == 1 or ARGV[3] == '1' or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], window)
end
return {1, n, redis.call('PTTL', KEYS[1])}
"""
_DECR = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 0 then return 0 end
return redis.call('DECR', KEYS[1])
"""
_CAS = """
local ver = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if ver ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'val', ARGV[2], 'ver', ver + 1)
return 1
"""


class RedisStore:
    """Shared state in Redis; every operation is one Lua script (atomic).

    Every method raises SharedStateUnavailable when Redis does not answer in time,
    and at once (without a call) for REDIS_COOLDOWN_SECONDS after such a failure.
    """

    transactional = False

    def __init__(self, url: str, *, prefix: str = "stepsync:") -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.client = redis.Redis.from_url(
            url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
            socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 1),
        )
        self.prefix = prefix
        self._down_until = 0.0
        self._failures: tuple[type[BaseException], ...] = (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
        )
        self._scripts = {
            name: self.client.register_script(src)
            for name, src in (("incr", _INCR_WITHIN), ("decr", _DECR), ("cas", _CAS))
        }

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _call(self, action: Callable[[], T]) -> T:
        if time.monotonic() < self._down_until:
            raise SharedStateUnavailable()
        try:
            return action()
        except self._failures:
            self._down_until = time.monotonic() + REDIS_COOLDOWN_SECONDS
            raise SharedStateUnavailable() from None

    def incr_within(
        self,
        key: str,
        *,
        limit: int,
        window_seconds: float,
        now: float,
        refresh: bool = False,
    ) -> Counted:
        """Same contract as DatabaseStore.incr_within; expiry runs on Redis's clock."""
        window_ms = max(1, int(window_seconds * 1000))
        allowed, count, ttl_ms = self._call(
            lambda: self._scripts["incr"](
                keys=[self._k(key)], args=[limit, window_ms, "1" if refresh else "0"]
            )
        )
        reset_at = now + (max(int(ttl_ms), 0) / 1000.0)
        return Counted(bool(allowed), int(count), reset_at)

    def decr(self, key: str) -> int:
        return int(self._call(lambda: self._scripts["decr"](keys=[self._k(key)])))

    def read(self, key: str) -> Versioned:
        raw = self._call(lambda: self.client.hmget(self._k(key), ["val", "ver"]))
        stored = raw[0]
        # Bytes by default; str when REDIS_URL sets ?decode_responses=true.
        value = stored.decode() if isinstance(stored, bytes) else (stored or "")
        return Versioned(value, int(raw[1] or 0))

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Each script is atomic on its own; Redis has no transaction to join."""
        return contextlib.nullcontext()

    def compare_and_set(self, key: str, *, expected_version: int, value: str) -> bool:
        done = self._call(
            lambda: self._scripts["cas"](
                keys=[self._k(key)], args=[expected_version, value]
            )
        )
        return bool(done)


_lock = threading.Lock()
_stores: dict[str, SharedStore] = {}


def default_store() -> SharedStore:
    """The process's store: Redis when ``REDIS_URL`` is set, else the database."""
    url = settings.REDIS_URL
    with _lock:
        store = _stores.get(url)
        if store is None:
            store = RedisStore(url) if url else DatabaseStore()
            _stores[url] = store
        return store
