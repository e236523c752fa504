"""The per-process gate in front of SQLite's write lock (stepsync.db.sqlcipher)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import OperationalError, connection, transaction

from stepsync.db.sqlcipher.writer_gate import GATE, WriterGate


def _in_thread(action) -> object:  # type: ignore[no-untyped-def]  # any callable
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(action()))
    thread.start()
    thread.join()
    return result[0]


def test_the_thread_holding_the_gate_may_enter_again() -> None:
    gate = WriterGate()
    assert gate.acquire(0.01)
    assert gate.acquire(0.01)
    gate.release()
    assert gate.holder() == threading.get_ident()
    gate.release()
    assert gate.holder() is None


def test_another_thread_waits_at_most_its_timeout() -> None:
    gate = WriterGate()
    gate.acquire(0.01)
    assert _in_thread(lambda: gate.acquire(0.05)) is False


def test_a_gate_opened_from_another_thread_lets_the_next_one_in() -> None:
    gate = WriterGate()
    gate.acquire(0.01)
    _in_thread(gate.release)
    assert _in_thread(lambda: gate.acquire(0.05)) is True


def test_many_threads_each_get_through_in_turn() -> None:
    gate, inside, most = WriterGate(), [0], [0]

    def work() -> None:
        for _ in range(200):
            assert gate.acquire(5)
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            inside[0] -= 1
            gate.release()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLCipher backend")
@pytest.mark.django_db(transaction=True)
def test_a_write_transaction_holds_the_gate_until_it_commits() -> None:
    with transaction.atomic():
        Group.objects.create(name="gated")
        assert GATE.holder() == threading.get_ident()
    assert GATE.holder() is None


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLCipher backend")
@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_opens_the_gate() -> None:
    def undone() -> None:
        with transaction.atomic():
            Group.objects.create(name="gated")
            raise RuntimeError("undo")

    with pytest.raises(RuntimeError):
        undone()
    assert GATE.holder() is None
    assert not Group.objects.filter(name="gated").exists()


def _other_process_writer(hold_seconds: float) -> threading.Thread:
    """A connection of its own (as another worker process has) that holds SQLite's
    write lock for ``hold_seconds``; the gate does not know about it."""
    from stepsync.db.sqlcipher.base import open_keyed
    from stepsync.secrets import DATABASE_KEY, read_secret

    other = open_keyed(
        connection.settings_dict["NAME"],
        read_secret(DATABASE_KEY),
        isolation_level=None,
        check_same_thread=False,
    )
    other.execute("BEGIN IMMEDIATE")
    locked = threading.Event()

    def hold() -> None:
        locked.set()
        time.sleep(hold_seconds)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait()
    return thread


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLCipher backend")
@pytest.mark.django_db(transaction=True)
def test_a_transaction_begins_once_another_processes_writer_commits() -> None:
    Group.objects.count()  # connected before the other writer takes the lock
    other = _other_process_writer(0.2)

    with transaction.atomic():
        Group.objects.create(name="after the other writer")
    other.join()

    assert Group.objects.filter(name="after the other writer").exists()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLCipher backend")
@pytest.mark.django_db(transaction=True)
def test_the_busy_timeout_is_restored_after_a_polled_begin() -> None:
    other = _other_process_writer(0.05)
    with transaction.atomic():
        Group.objects.create(name="polled")
    other.join()

    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == settings.DATABASE_BUSY_TIMEOUT_MS


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLCipher backend")
@pytest.mark.django_db(transaction=True)
def test_a_writer_held_past_the_busy_timeout_fails_as_locked_and_opens_the_gate(
    settings: Any,
) -> None:
    settings.DATABASE_BUSY_TIMEOUT_MS = 100
    Group.objects.count()
    other = _other_process_writer(0.6)

    with pytest.raises(OperationalError, match="locked"), transaction.atomic():
        Group.objects.create(name="refused")
    other.join()

    assert GATE.holder() is None
