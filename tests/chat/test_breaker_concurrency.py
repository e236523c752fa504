"""The breaker under 50 threads and under ±1 day wall-clock jumps (time-machine)."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.db import connection

from chat import breaker
from chat.breaker import Breaker, BreakerConfig, BreakerRejected
from tests.chat.llm_support import Clock

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


def opened(store: Any, clock: Any, **overrides: Any) -> Breaker:
    config = BreakerConfig(
        failure_threshold=5,
        success_threshold=2,
        open_seconds=60.0,
        half_open_max_calls=overrides.pop("k", 1),
        **overrides,
    )
    b = Breaker("llm", config=config, store=store, clock=clock)
    for _ in range(5):
        b.record(b.allow(), outcome=breaker.FAILURE)
    assert b.snapshot().state == "open"
    return b


def admitted_by_threads(b: Breaker, threads: int) -> list[breaker.Permit]:
    barrier = threading.Barrier(threads)
    permits: list[breaker.Permit] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait()
            try:
                permit = b.allow()
            except BreakerRejected:
                return
            with lock:
                permits.append(permit)
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return permits


@pytest.mark.parametrize("k", [1, 3])
def test_fifty_threads_in_half_open_get_exactly_k_trial_calls(
    shared: Any, k: int
) -> None:
    clock = Clock()
    b = opened(shared, clock, k=k)
    clock.advance(60)

    permits = admitted_by_threads(b, 50)

    assert len(permits) == k
    assert all(p.state == "half_open" for p in permits)
    assert len({p.probe_id for p in permits}) == k


def test_fifty_threads_opening_it_write_one_transition(shared: Any) -> None:
    from chat.models import BreakerTransition

    b = Breaker(
        "llm",
        config=BreakerConfig(failure_threshold=5, minimum_calls=1000),
        store=shared,
        clock=Clock(),
    )
    barrier = threading.Barrier(50)

    def worker() -> None:
        try:
            barrier.wait()
            b.record(breaker.Permit("llm", "closed"), outcome=breaker.FAILURE)
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(50)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()

    assert b.snapshot().state == "open"
    assert BreakerTransition.objects.filter(to_state="open").count() == 1


@pytest.mark.parametrize("days", [1, -1])
def test_a_wall_clock_jump_of_a_day_does_not_keep_it_open(
    shared: Any, days: int
) -> None:
    start = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        b = opened(shared, time.time)
        with pytest.raises(BreakerRejected):
            b.allow()

        traveller.move_to(start + dt.timedelta(days=days))
        probe = b.allow()

    assert probe.state == "half_open"


def test_a_backward_jump_during_the_open_period_admits_only_one_trial(
    shared: Any,
) -> None:
    start = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        b = opened(shared, time.time)
        traveller.move_to(start - dt.timedelta(days=1))
        probe = b.allow()
        with pytest.raises(BreakerRejected):
            b.allow()

    assert probe.state == "half_open"
    assert b.snapshot().state == "half_open"
