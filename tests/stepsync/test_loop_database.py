"""Database work on the event loop (stepsync/loop_database.py): inline on
SQLCipher while the writer gate is open, in a thread otherwise."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import SynchronousOnlyOperation
from django.db import connection
from django.test import override_settings

from stepsync.db.sqlcipher.writer_gate import GATE
from stepsync.loop_database import run_database_work

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
