"""Database work on the event loop (stepsync/loop_database.py): inline on
SQLCipher while the writer gate is open, in a thread otherwise."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, ThreadSensitiveContext, sync_to_async
from django.contrib.auth import get_user_model
from django.core.exceptions import SynchronousOnlyOperation
from django.core.signals import request_finished, request_started
from django.db import connection
from django.test import override_settings
from rest_framework.authtoken.models import Token

from chat.models import Conversation
from stepsync.asgi_handler import ExecutorPool, ThreadLeasingASGIHandler
from stepsync.db.sqlcipher.writer_gate import GATE
from stepsync.loop_database import LoopExecutor, run_database_work
from tests.factories import make_user
from tests.stepsync.asgi_calls import post_message

pytestmark = pytest.mark.django_db(transaction=True)


def _ran_on_the_loop_thread() -> bool:
    """Whether ``run_database_work`` ran its call on the event loop's thread."""

    async def main() -> tuple[int, int]:
        return threading.get_ident(), await run_database_work(threading.get_ident)

    loop_thread, work_thread = asyncio.run(main())
    return work_thread == loop_thread


@pytest.fixture
def gate_held_elsewhere() -> Iterator[None]:
    """The writer gate held by another thread of this process until the end."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        GATE.acquire(5)
        taken.set()
        release.wait(10)
        GATE.release()

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait(5)
    yield
    release.set()
    holder.join(5)


@pytest.mark.sqlcipher_only
def test_the_work_runs_on_the_event_loop_thread_on_sqlcipher() -> None:
    assert _ran_on_the_loop_thread()


@pytest.mark.postgres_only
def test_the_work_runs_in_a_thread_on_postgresql() -> None:
    assert not _ran_on_the_loop_thread()


@pytest.mark.sqlcipher_only
def test_the_work_runs_in_a_thread_while_another_thread_holds_the_writer_gate(
    gate_held_elsewhere: None,
) -> None:
    assert not _ran_on_the_loop_thread()


@pytest.mark.sqlcipher_only
def test_the_work_runs_in_a_thread_when_the_shared_state_is_on_redis() -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:6379/0"):
        assert not _ran_on_the_loop_thread()


@pytest.mark.sqlcipher_only
def test_the_work_runs_in_a_thread_when_switched_off() -> None:
    with override_settings(INLINE_DATABASE_WORK=False):
        assert not _ran_on_the_loop_thread()


@pytest.mark.sqlcipher_only
def test_the_orm_works_inline_and_the_async_guard_is_back_after_the_call() -> None:
    users = get_user_model().objects

    async def main() -> int:
        count = await run_database_work(users.count)
        with pytest.raises(SynchronousOnlyOperation):
            users.count()
        return count

    assert asyncio.run(main()) == users.count()


def test_an_exception_in_the_work_reaches_the_caller_with_the_loop_restored() -> None:
    def fails() -> None:
        raise ValueError("no")

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        with pytest.raises(ValueError, match="no"):
            await run_database_work(fails)
        return asyncio.get_running_loop() is loop

    assert asyncio.run(main())


@pytest.mark.sqlcipher_only
def test_a_connection_past_its_max_age_is_closed_after_the_work() -> None:
    def age_the_connection() -> int:
        connection.ensure_connection()
        connection.close_at = time.monotonic() - 1
        return threading.get_ident()

    async def main() -> bool:
        assert await run_database_work(age_the_connection) == threading.get_ident()
        return connection.connection is None

    assert asyncio.run(main())


def _through_a_loop_executor(fn: Any) -> tuple[int, Any]:
    """(loop thread, ``fn()``) for ``fn`` sent by asgiref to a LoopExecutor."""
    fallback = ThreadPoolExecutor(max_workers=1)

    async def main() -> tuple[int, Any]:
        async with ThreadSensitiveContext(executor=LoopExecutor(fallback)):
            return threading.get_ident(), await sync_to_async(fn)()

    try:
        return asyncio.run(main())
    finally:
        fallback.shutdown()


@pytest.mark.sqlcipher_only
def test_a_loop_executor_runs_djangos_calls_on_the_loop_thread() -> None:
    loop_thread, work_thread = _through_a_loop_executor(threading.get_ident)
    assert work_thread == loop_thread


@pytest.mark.sqlcipher_only
def test_a_loop_executor_sends_calls_to_its_thread_while_the_gate_is_held(
    gate_held_elsewhere: None,
) -> None:
    loop_thread, work_thread = _through_a_loop_executor(threading.get_ident)
    assert work_thread != loop_thread


@pytest.mark.sqlcipher_only
def test_a_loop_executor_leaves_the_loop_threads_asgiref_marks_as_they_were() -> None:
    before = dict(SyncToAsync.threadlocal.__dict__)  # an earlier test may have set some
    _through_a_loop_executor(lambda: None)
    assert SyncToAsync.threadlocal.__dict__ == before


@pytest.mark.sqlcipher_only
def test_a_loop_executor_hands_an_exception_to_the_awaiting_coroutine() -> None:
    def fails() -> None:
        raise KeyError("gone")

    with pytest.raises(KeyError, match="gone"):
        _through_a_loop_executor(fails)


@pytest.mark.sqlcipher_only
def test_concurrent_messages_are_stored_once_each_with_every_call_on_the_loop() -> None:
    user = make_user(username="looper")
    token = Token.objects.create(user=user).key
    conversation = Conversation.objects.create(user=user)
    app = ThreadLeasingASGIHandler(ExecutorPool(shared=1))
    threads: set[int] = set()

    def on_signal(**kwargs: Any) -> None:
        threads.add(threading.get_ident())

    async def burst() -> tuple[int, list[tuple[int, Any]]]:
        sends = (
            post_message(app, token, conversation.pk, f"loop-{n}") for n in range(6)
        )
        return threading.get_ident(), await asyncio.gather(*sends)

    request_started.connect(on_signal)
    request_finished.connect(on_signal)
    try:
        loop_thread, results = asyncio.run(burst())
    finally:
        request_started.disconnect(on_signal)
        request_finished.disconnect(on_signal)
        app.pool.close()
    assert [status for status, _ in results] == [201] * 6
    assert len({body["user_message"]["id"] for _, body in results}) == 6
    assert conversation.messages.filter(role="user").count() == 6
    assert threads == {loop_thread}
