"""Automatic logoff: idle timeout, absolute lifetime and clock jumps (server clock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.conf import settings
from django.contrib.sessions.models import Session
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client

from chat.middleware import (
    EXPIRED_MESSAGE,
    LIFETIME_MESSAGE,
    LOGIN_AT_KEY,
    SessionTimeoutMiddleware,
)
from tests.chat.conftest import audit_rows
from tests.factories import PASSWORD

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIST_URL = "/conversations/"


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def signed_in(client: Client, patient: Any, clock: Any) -> Client:
    response = client.post("/login/", {"username": "patient", "password": PASSWORD})
    assert response.status_code == 302
    return client


def session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_the_login_time_is_stored_in_the_session_at_login(signed_in: Client) -> None:
    assert signed_in.session[LOGIN_AT_KEY] == START.timestamp()


def test_activity_within_the_idle_timeout_keeps_the_session(
    signed_in: Client, clock: Any
) -> None:
    clock.shift(timedelta(minutes=10))
    signed_in.get(LIST_URL)
    clock.shift(timedelta(minutes=10))

    response = signed_in.get(LIST_URL)

    assert response.status_code == 200


def test_an_idle_session_is_logged_out_after_the_idle_timeout(
    signed_in: Client, clock: Any
) -> None:
    clock.shift(timedelta(minutes=settings.SESSION_IDLE_TIMEOUT_MINUTES, seconds=1))

    response = signed_in.get(LIST_URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_the_expired_session_is_deleted_on_the_server(
    signed_in: Client, clock: Any
) -> None:
    old_key = session_key(signed_in)
    clock.shift(timedelta(hours=1))

    signed_in.get(LIST_URL)

    assert Session.objects.filter(session_key=old_key).exists() is False


def test_the_idle_expiry_is_audited_with_its_reason(
    signed_in: Client, clock: Any, patient: Any
) -> None:
    clock.shift(timedelta(hours=1))

    signed_in.get(LIST_URL)

    rows = audit_rows("SESSION_EXPIRED")
    assert [(r.actor_id, r.details["reason"]) for r in rows] == [(patient.pk, "idle")]


def test_the_login_page_tells_the_user_why_they_were_logged_out(
    signed_in: Client, clock: Any
) -> None:
    clock.shift(timedelta(hours=1))

    response = signed_in.get(LIST_URL, follow=True)

    assert EXPIRED_MESSAGE in response.content.decode()


def test_an_active_session_ends_at_the_absolute_lifetime(
    signed_in: Client, clock: Any, settings: Any
) -> None:
    settings.SESSION_ABSOLUTE_TIMEOUT_HOURS = 1
    for _ in range(5):
        clock.shift(timedelta(minutes=10))
        assert signed_in.get(LIST_URL).status_code == 200
    clock.shift(timedelta(minutes=10))

    response = signed_in.get(LIST_URL, follow=True)

    assert LIFETIME_MESSAGE in response.content.decode()
    assert audit_rows("SESSION_EXPIRED")[-1].details["reason"] == "absolute"


def test_a_forward_clock_jump_logs_the_user_out(signed_in: Client, clock: Any) -> None:
    clock.shift(timedelta(days=3))

    response = signed_in.get(LIST_URL)

    assert response.status_code == 302


def test_a_backward_clock_jump_logs_the_user_out(signed_in: Client, clock: Any) -> None:
    clock.shift(timedelta(hours=-2))

    response = signed_in.get(LIST_URL)

    assert response.status_code == 302
    assert audit_rows("SESSION_EXPIRED")[-1].details["reason"] == "clock_moved_back"


def test_a_small_backward_clock_correction_keeps_the_session(
    signed_in: Client, clock: Any
) -> None:
    clock.shift(timedelta(seconds=-20))

    response = signed_in.get(LIST_URL)

    assert response.status_code == 200


def test_an_expired_session_on_the_api_gets_a_json_401(
    signed_in: Client, clock: Any
) -> None:
    clock.shift(timedelta(hours=1))

    response = signed_in.get("/api/conversations/")

    assert response.status_code == 401
    assert response.json()["error"] == "session_expired"


def test_a_session_made_without_the_login_view_gets_its_clock_on_first_use(
    client: Client, patient: Any, clock: Any
) -> None:
    client.force_login(patient)
    client.get(LIST_URL)
    clock.shift(timedelta(hours=1))

    response = client.get(LIST_URL)

    assert response.status_code == 302


def test_the_middleware_runs_natively_in_an_async_stack() -> None:
    async def get_response(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    middleware = SessionTimeoutMiddleware(get_response)

    assert iscoroutinefunction(middleware) is True


@pytest.mark.django_db(transaction=True)
def test_an_idle_session_is_logged_out_under_asgi(patient: Any, clock: Any) -> None:
    client = AsyncClient()
    async_to_sync(client.aforce_login)(patient)
    async_to_sync(client.get)(LIST_URL)
    clock.shift(timedelta(hours=1))

    response = async_to_sync(client.get)(LIST_URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
