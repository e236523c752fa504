"""50 concurrent requests against a limit of 10 let exactly 10 through (both backends)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from chat import limits
from chat.limits import RateLimited

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["db", "redis"])
def shared(request: pytest.FixtureRequest) -> Iterator[Any]:
    from stepsync.sharedstate import DatabaseStore, RedisStore

    if request.param == "db":
        yield DatabaseStore()
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"stepsync-test:{uuid.uuid4().hex}:"
    redis_store = RedisStore(url, prefix=prefix)
    yield redis_store
    for key in redis_store.client.scan_iter(match=prefix + "*"):
        redis_store.client.delete(key)


def run_threads(count: int, action: Any) -> int:
    barrier = threading.Barrier(count)
    passed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait()
            try:
                action()
            except RateLimited:
                return
            with lock:
                passed.append(1)
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(count)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return len(passed)


def test_fifty_concurrent_messages_against_a_limit_of_ten_pass_ten(
    shared: Any, settings: Any
) -> None:
    settings.RATE_LIMIT_MESSAGES_PER_MINUTE = 10

    passed = run_threads(50, lambda: limits.message_rate_check(user_id=7, store=shared))

    assert passed == 10


def test_fifty_concurrent_llm_calls_against_the_global_hour_pass_exactly_it(
    shared: Any, settings: Any
) -> None:
    settings.RATE_LIMIT_CALLS_PER_HOUR = 10
    settings.RATE_LIMIT_CALLS_PER_USER_HOUR = 1000
    settings.LLM_MAX_CONCURRENT_PER_USER = 1000
    user_ids = iter(range(1000, 1050))
    lock = threading.Lock()

    def acquire() -> None:
        with lock:
            user_id = next(user_ids)
        limits.llm_slot_acquire(user_id=user_id, store=shared)

    assert run_threads(50, acquire) == 10
