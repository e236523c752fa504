"""Shared request threads (stepsync/shared_threads.py): the chat message endpoint's
requests share a few threads; a stuck one is passed over; other views keep a
thread each."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_started
from django.test import override_settings
from rest_framework.authtoken.models import Token

from chat.models import Conversation
from stepsync.asgi_handler import (
    ExecutorPool,
    ThreadLeasingASGIHandler,
    _path_shares,
    _shares,
)
from stepsync.shared_threads import SharedThreads
from tests.factories import make_user
from tests.stepsync.asgi_calls import AsgiBrowser, post_message


def _block(executor: Any) -> threading.Event:
    """Keep ``executor``'s thread busy until the returned event is set."""
    release = threading.Event()
    executor.submit(release.wait, 5)
    return release


def test_the_least_queued_shared_thread_is_picked() -> None:
    threads = SharedThreads(2)
    busy = threads.executors[0]
    release = _block(busy)
    try:
        assert threads.pick() is threads.executors[1]
    finally:
        release.set()
        threads.shutdown(lambda: None)


def test_a_thread_whose_call_runs_past_the_stuck_limit_is_passed_over() -> None:
    threads = SharedThreads(1, stuck_after=0.05)
    release = _block(threads.executors[0])
    try:
        time.sleep(0.1)
        assert threads.pick() is None
    finally:
        release.set()
        threads.shutdown(lambda: None)


def test_a_shared_lease_falls_back_to_a_thread_of_its_own_when_all_are_stuck() -> None:
    pool = ExecutorPool(shared=1)
    pool.shared.stuck_after = 0.05
    release = _block(pool.shared.executors[0])
    try:
        time.sleep(0.1)
        own = pool.lease(shared=True)
        assert not pool.shared.owns(own)
        pool.give_back(own)
    finally:
        release.set()
        pool.close()


def test_a_shared_thread_outlives_its_requests() -> None:
    pool = ExecutorPool(shared=1)
    executor = pool.lease(shared=True)
    pool.give_back(executor)
    assert executor.submit(lambda: 42).result() == 42
    assert pool.lease(shared=True) is executor
    pool.close()


def test_only_the_message_endpoint_shares_threads() -> None:
    assert _shares({"path": "/api/conversations/7/messages/"})
    assert not _shares({"path": "/api/conversations/"})
    assert not _shares({"path": "/health/ready"})
    assert not _shares({"path": "/no/such/page/"})


def test_a_paths_sharing_is_resolved_once_while_it_is_recent() -> None:
    _path_shares.cache_clear()
    for _ in range(3):
        _shares({"path": "/api/conversations/8/messages/"})

    assert (_path_shares.cache_info().misses, _path_shares.cache_info().hits) == (1, 2)


@pytest.fixture
def shared_handler() -> Iterator[ThreadLeasingASGIHandler]:
    app = ThreadLeasingASGIHandler(ExecutorPool(shared=1))
    yield app
    app.pool.close()


@pytest.mark.django_db(transaction=True)
@override_settings(INLINE_DATABASE_WORK=False)  # else on the loop (test_loop_database)
def test_concurrent_messages_are_stored_once_each_on_the_shared_thread(
    shared_handler: ThreadLeasingASGIHandler,
) -> None:
    user = make_user(username="sharer")
    token = Token.objects.create(user=user).key
    conversation = Conversation.objects.create(user=user)
    names: set[str] = set()

    def on_start(**kwargs: Any) -> None:
        names.add(threading.current_thread().name)

    async def burst() -> list[tuple[int, Any]]:
        return await asyncio.gather(
            *(
                post_message(shared_handler, token, conversation.pk, f"shared-{n}")
                for n in range(6)
            )
        )

    request_started.connect(on_start)
    try:
        results = asyncio.run(burst())
    finally:
        request_started.disconnect(on_start)
    assert [status for status, _ in results] == [201] * 6
    ids = {body["user_message"]["id"] for _, body in results}
    assert len(ids) == 6
    assert conversation.messages.filter(role="user").count() == 6
    assert len(names) == 1
    assert next(iter(names)).startswith("shared-request")


@pytest.mark.django_db(transaction=True)
def test_other_views_keep_a_thread_of_their_own(
    shared_handler: ThreadLeasingASGIHandler,
) -> None:
    names: list[str] = []

    def on_start(**kwargs: Any) -> None:
        names.append(threading.current_thread().name)

    request_started.connect(on_start)
    try:
        status = AsgiBrowser(shared_handler).get("/health/ready").status
    finally:
        request_started.disconnect(on_start)
    assert status == 200
    assert names
    assert not names[0].startswith("shared-request")
