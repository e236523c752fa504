"""Server processes checkpoint the WAL from a thread, not inside a commit."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from stepsync.db.sqlcipher import checkpointer

pytestmark = [pytest.mark.sqlcipher_only, pytest.mark.django_db(transaction=True)]


def autocheckpoint() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        return int(cursor.fetchone()[0])


@pytest.fixture
def running() -> Iterator[checkpointer.Checkpointer]:
    started = checkpointer.start(0.05)
    assert started is not None
    connection.close()  # the next query opens a connection that sees it running
    yield started
    checkpointer.stop()
    connection.close()


def test_a_checkpoint_copies_the_logs_frames_into_the_database() -> None:
    Group.objects.bulk_create([Group(name=f"g{i}") for i in range(50)])

    busy, log, copied = checkpointer.checkpoint()

    assert busy == 0
    assert log > 0
    assert copied == log


def test_connections_opened_while_it_runs_leave_checkpoints_to_it(
    running: checkpointer.Checkpointer,
) -> None:
    assert autocheckpoint() == 0


def test_connections_checkpoint_by_themselves_again_once_it_stops(
    running: checkpointer.Checkpointer,
) -> None:
    checkpointer.stop()
    connection.close()

    assert autocheckpoint() == 1000


def test_the_thread_checkpoints_what_the_requests_wrote(
    running: checkpointer.Checkpointer,
) -> None:
    Group.objects.bulk_create([Group(name=f"w{i}") for i in range(50)])
    before = running.rounds

    deadline = time.monotonic() + 10
    while running.rounds <= before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)

    assert running.rounds > before + 1
    assert running.last is not None
    busy, log, copied = running.last
    assert (busy, copied) == (0, log)


def test_no_checkpointer_starts_when_the_interval_is_zero() -> None:
    assert checkpointer.start(0) is None
    assert checkpointer.active() is False
