"""50 concurrent limit checks from 4 OS processes let exactly the limit through.

Four forked processes each start their share of 50 threads; all 50 wait on one
cross-process barrier and then count against the same shared store (the database,
and Redis when it is running), so the counts race across processes, not only
across threads of one interpreter.
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection, connections

from chat import limits
from chat.limits import RateLimited
from stepsync.sharedstate import DatabaseStore, RedisStore

pytestmark = pytest.mark.django_db(transaction=True)

PROCESSES = 4
REQUESTS = 50
LIMIT = 10


@pytest.fixture(params=["db", "redis"])
def store_spec(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """("db", "") or ("redis", prefix): each child builds its own store from it."""
    if request.param == "db":
        yield ("db", "")
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"stepsync-test:{uuid.uuid4().hex}:"
    yield (url, prefix)
    cleanup = RedisStore(url, prefix=prefix)
    for key in cleanup.client.scan_iter(match=prefix + "*"):
        cleanup.client.delete(key)


def _store(spec: tuple[str, str]) -> Any:
    url, prefix = spec
    return DatabaseStore() if url == "db" else RedisStore(url, prefix=prefix)


def _child(
    spec: tuple[str, str],
    threads: int,
    first_id: int,
    check: Callable[[Any, int], None],
    barrier: Any,
    passed: Any,
) -> None:
    store = _store(spec)

    def one(n: int) -> None:
        try:
            barrier.wait()
            try:
                check(store, first_id + n)
            except RateLimited:
                return
            with passed.get_lock():
                passed.value += 1
        finally:
            connection.close()

    pool = [threading.Thread(target=one, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def run_in_processes(spec: tuple[str, str], check: Callable[[Any, int], None]) -> int:
    """Run ``check(store, n)`` 50 times at once from 4 processes; count passes."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(REQUESTS)
    passed = context.Value("i", 0)
    shares = [
        REQUESTS // PROCESSES + (i < REQUESTS % PROCESSES) for i in range(PROCESSES)
    ]
    connections.close_all()  # children must not share the parent's connection
    children = [
        context.Process(
            target=_child,
            args=(spec, share, sum(shares[:i]), check, barrier, passed),
        )
        for i, share in enumerate(shares)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0] * PROCESSES
    return int(passed.value)


def _message(store: Any, n: int) -> None:
    limits.message_rate_check(user_id=7, store=store)


def _llm_call(store: Any, n: int) -> None:
    limits.llm_slot_acquire(user_id=1000 + n, store=store)


def test_fifty_messages_from_four_processes_against_a_limit_of_ten_pass_ten(
    store_spec: tuple[str, str], settings: Any
) -> None:
    settings.RATE_LIMIT_MESSAGES_PER_MINUTE = LIMIT

    assert run_in_processes(store_spec, _message) == LIMIT


def test_fifty_llm_calls_from_four_processes_pass_exactly_the_global_hour(
    store_spec: tuple[str, str], settings: Any
) -> None:
    settings.RATE_LIMIT_CALLS_PER_HOUR = LIMIT
    settings.RATE_LIMIT_CALLS_PER_USER_HOUR = 1000
    settings.LLM_MAX_CONCURRENT_PER_USER = 1000

    assert run_in_processes(store_spec, _llm_call) == LIMIT
