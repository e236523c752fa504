"""PostgreSQL connections come from a pool and go back to it between a turn's phases."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction

from stepsync.db.pooling import release_pooled_connections

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def _available() -> int:
    return int(connection.pool.get_stats().get("pool_available", 0))


def test_the_postgresql_connection_comes_from_a_bounded_pool() -> None:
    Group.objects.count()

    assert connection.pool is not None
    assert connection.pool.max_size >= 1


def test_a_released_connection_goes_back_to_the_pool() -> None:
    Group.objects.count()
    before = _available()

    release_pooled_connections()

    assert connection.connection is None
    assert _available() == before + 1


def test_a_connection_inside_a_transaction_is_kept() -> None:
    with transaction.atomic():
        Group.objects.create(name="kept")
        release_pooled_connections()
        assert connection.connection is not None
        assert Group.objects.filter(name="kept").exists()


def _child_query(done: Any) -> None:
    done.value = Group.objects.filter(name="before-fork").count() + 1


def test_a_forked_child_opens_its_own_connections() -> None:
    Group.objects.create(name="before-fork")
    release_pooled_connections()
    context = multiprocessing.get_context("fork")
    done = context.Value("i", 0)

    child = context.Process(target=_child_query, args=(done,))
    child.start()
    child.join(30)

    assert child.exitcode == 0
    assert done.value == 2
    assert Group.objects.filter(name="before-fork").exists()  # ours still works
