"""Rate limits shared by every worker process (fixed windows on atomic counters).

- ``message_rate_check``: RATE_LIMIT_MESSAGES_PER_MINUTE per user, for ALL messages.
- ``llm_slot_acquire`` / ``llm_slot_release``: one LLM call needs a slot under
  LLM_MAX_CONCURRENT_PER_USER (in flight), RATE_LIMIT_CALLS_PER_USER_HOUR and
  RATE_LIMIT_CALLS_PER_HOUR (all users). A refused step refunds the steps before it.

Each check is one conditional increment in stepsync.sharedstate (a single SQL UPDATE
or a Redis Lua script), so N concurrent requests from any number of processes let
exactly ``limit`` through. Windows start at their first hit; a window whose end is
further away than its length (the wall clock went back) restarts. Users are keyed by
primary key; anonymous callers never reach these checks (the API requires login).

When the shared store is unreachable (``SharedStateUnavailable``) the message rate
check fails open (logged ``limits.store_unavailable``: users still get rule answers),
while ``llm_slot_acquire`` raises it so that LLM admission fails closed to the rules
fallback; releasing a slot then gives up quietly (the in-flight count expires).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from chat.exceptions import ChatError
from stepsync.sharedstate import SharedStateUnavailable, SharedStore, default_store

logger = logging.getLogger(__name__)

MINUTE, HOUR = 60.0, 3600.0


class RateLimited(ChatError):
    """A limit was reached; ``scope`` is a fixed code, ``retry_after`` whole seconds."""

    status_code = 429
    code = "rate_limited"
    message = "Too many requests. Try again later."

    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__()
        self.scope = scope
        self.retry_after = max(1, int(retry_after))

    def payload(self) -> dict[str, Any]:
        """The JSON error body of the API's 429 response."""
        return {
            "error": self.code,
            "message": self.message,
            "retry_after": self.retry_after,
        }


@dataclass(frozen=True)
class LLMSlot:
    """Proof that one LLM call was admitted; release it when the call ends."""

    user_id: int
    concurrency_key: str


def _retry_after(reset_at: float, now: float) -> int:
    return max(1, math.ceil(reset_at - now))


def message_rate_check(
    *, user_id: int, store: SharedStore | None = None, now: float | None = None
) -> None:
    """Count one message of ``user_id``; raise RateLimited("messages") past the limit.

    Fails open when the shared store is unreachable (the message is not counted).
    """
    store = store or default_store()
    now = time.time() if now is None else now
    try:
        counted = store.incr_within(
            f"rl:msg:u{int(user_id)}",
            limit=settings.RATE_LIMIT_MESSAGES_PER_MINUTE,
            window_seconds=MINUTE,
            now=now,
        )
    except SharedStateUnavailable:
        logger.warning("limits.store_unavailable scope=messages user=%s", int(user_id))
        return
    if not counted.allowed:
        raise RateLimited("messages", _retry_after(counted.reset_at, now))


def llm_slot_acquire(
    *, user_id: int, store: SharedStore | None = None, now: float | None = None
) -> LLMSlot:
    """Admit one LLM call for ``user_id`` or raise RateLimited (scope
    "concurrent", "user_hour" or "global_hour"); refunds on refusal. The global
    count is taken last, so on PostgreSQL its row is locked only until the commit.

    Raises SharedStateUnavailable when the store is unreachable (fail closed)."""
    store = store or default_store()
    with store.batch():  # the three counts in one write transaction
        return _slot_acquire(store, int(user_id), time.time() if now is None else now)


def _slot_acquire(store: SharedStore, uid: int, now: float) -> LLMSlot:
    concurrency_key = f"rl:llm:inflight:u{uid}"
    # The in-flight count expires after a quiet deadline-plus-margin, so a worker
    # that died mid-call cannot lock its user out for longer than that.
    inflight = store.incr_within(
        concurrency_key,
        limit=settings.LLM_MAX_CONCURRENT_PER_USER,
        window_seconds=settings.LLM_DEADLINE_SECONDS + 30.0,
        now=now,
        refresh=True,
    )
    if not inflight.allowed:
        raise RateLimited("concurrent", 1)
    user_hour_key = f"rl:llm:hour:u{uid}"
    steps = (
        (user_hour_key, settings.RATE_LIMIT_CALLS_PER_USER_HOUR, "user_hour"),
        ("rl:llm:hour:all", settings.RATE_LIMIT_CALLS_PER_HOUR, "global_hour"),
    )
    taken = [concurrency_key]
    try:
        for key, limit, scope in steps:
            counted = store.incr_within(key, limit=limit, window_seconds=HOUR, now=now)
            if not counted.allowed:
                raise RateLimited(scope, _retry_after(counted.reset_at, now))
            taken.append(key)
    except (RateLimited, SharedStateUnavailable):
        _refund(store, taken)
        raise
    return LLMSlot(uid, concurrency_key)


def _refund(store: SharedStore, keys: list[str]) -> None:
    # Inside the database store's batch a refusal rolls the counts back anyway;
    # after a failed statement PostgreSQL refuses the refund too (DatabaseError).
    try:
        for key in keys:
            store.decr(key)
    except (SharedStateUnavailable, DatabaseError):
        logger.warning("limits.store_unavailable scope=refund")


def llm_slot_release(slot: LLMSlot, *, store: SharedStore | None = None) -> None:
    """Free the in-flight slot (the hourly counts stay spent). Never raises for an
    unreachable store: the in-flight count then expires after its quiet window."""
    try:
        (store or default_store()).decr(slot.concurrency_key)
    except SharedStateUnavailable:
        logger.warning("limits.store_unavailable scope=release user=%s", slot.user_id)
