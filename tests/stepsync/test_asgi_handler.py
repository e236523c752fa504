"""The production ASGI handler: reused request threads (and so reused database
connections), and the allow-listed middleware's hooks run inline."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_started
from django.db import connection
from django.db.backends.signals import connection_created
from django.test import RequestFactory

from stepsync import middleware_inline
from stepsync.asgi_handler import ExecutorPool, ThreadLeasingASGIHandler
from tests.factories import PASSWORD, make_user
from tests.stepsync.asgi_calls import AsgiBrowser

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def handler() -> Iterator[ThreadLeasingASGIHandler]:
    app = ThreadLeasingASGIHandler()
    yield app
    app.pool.close()  # the lent threads' connections must not outlive the test


def test_a_returned_executor_is_lent_again() -> None:
    pool = ExecutorPool(max_idle=2)
    first = pool.lease()
    pool.give_back(first)
    assert pool.lease() is first


def test_an_executor_beyond_the_idle_limit_ends_when_returned() -> None:
    pool = ExecutorPool(max_idle=1)
    kept, extra = pool.lease(), pool.lease()
    pool.give_back(kept)
    pool.give_back(extra)
    assert pool.idle_count() == 1
    with pytest.raises(RuntimeError):
        extra.submit(print)
    pool.close()
    assert pool.idle_count() == 0
    with pytest.raises(RuntimeError):
        kept.submit(print)


def _server_connections_opened() -> int:
    """PostgreSQL: connections the pool has opened so far; else 0."""
    pool = getattr(connection, "pool", None)
    return int(pool.get_stats().get("connections_num", 0)) if pool else 0


def test_requests_one_after_another_share_one_thread_and_one_connection(
    handler: ThreadLeasingASGIHandler,
) -> None:
    threads: set[int] = set()
    opened: list[Any] = []

    def on_start(**kwargs: Any) -> None:
        threads.add(threading.get_ident())

    def on_connect(connection: Any, **kwargs: Any) -> None:
        opened.append(connection)

    browser = AsgiBrowser(handler)
    assert browser.get("/health/ready").status == 200  # warm: the pool is open
    before = _server_connections_opened()
    request_started.connect(on_start)
    connection_created.connect(on_connect)
    try:
        statuses = [browser.get("/health/ready").status for _ in range(6)]
    finally:
        request_started.disconnect(on_start)
        connection_created.disconnect(on_connect)
    assert statuses == [200] * 6
    assert len(threads) == 1
    if connection.vendor == "postgresql":
        # Pooled: each request takes a connection from the pool and returns it;
        # the server opens none for them.
        assert _server_connections_opened() == before
    else:
        assert opened == []  # the thread's connection persists


def test_a_login_through_the_handler_saves_its_session_and_checks_csrf(
    handler: ThreadLeasingASGIHandler,
) -> None:
    make_user(username="walker")
    browser = AsgiBrowser(handler)
    page = browser.get("/login/").body.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    form = f"csrfmiddlewaretoken={token[1]}&username=walker&password={PASSWORD}"
    assert browser.post_form("/login/", form).status == 302
    assert browser.get("/conversations/").status == 200


def test_a_post_without_a_csrf_token_is_refused_through_the_handler(
    handler: ThreadLeasingASGIHandler,
) -> None:
    make_user(username="walker")
    browser = AsgiBrowser(handler)
    response = browser.post_form("/login/", f"username=walker&password={PASSWORD}")
    assert response.status == 403


def test_a_middleware_off_the_allow_list_cannot_be_inlined() -> None:
    with pytest.raises(ImproperlyConfigured):
        middleware_inline.inline_class("axes.middleware.AxesMiddleware")


def test_an_allow_listed_middleware_is_adapted_and_others_load_as_they_are() -> None:
    path = "django.middleware.clickjacking.XFrameOptionsMiddleware"
    adapted = middleware_inline.resolve_middleware(path)
    assert issubclass(adapted, middleware_inline.InlineHooks)
    other = middleware_inline.resolve_middleware("axes.middleware.AxesMiddleware")
    assert not issubclass(other, middleware_inline.InlineHooks)


@pytest.mark.parametrize(
    ("method", "exempt", "in_thread"),
    [("POST", False, True), ("GET", False, False), ("POST", True, False)],
)
def test_the_csrf_check_goes_to_the_thread_only_when_it_may_read_the_request(
    method: str, exempt: bool, in_thread: bool
) -> None:
    request = RequestFactory().generic(method, "/")

    def view(request: Any) -> None:
        return None

    view.csrf_exempt = exempt  # type: ignore[attr-defined]  # as csrf_exempt sets it
    assert middleware_inline._csrf_check_reads_request(request, view) is in_thread


def test_a_modified_session_is_saved_in_the_thread() -> None:
    request = RequestFactory().get("/")
    request.session = type("Session", (), {"modified": True})()  # type: ignore[attr-defined]  # a stand-in
    assert middleware_inline._session_to_save(request, None) is True
    request.session.modified = False  # type: ignore[attr-defined]  # as above
    assert middleware_inline._session_to_save(request, None) is False
