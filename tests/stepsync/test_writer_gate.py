"""The per-process gate in front of SQLite's write lock (stepsync.db.sqlcipher)."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction

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
