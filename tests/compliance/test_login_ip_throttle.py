"""Password spraying: many usernames from one IP are stopped; other IPs are not."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.test import Client, RequestFactory
from django.utils import timezone

from compliance.exceptions import LockedOut
from compliance.lockout import MESSAGE
from compliance.models import AuditAction, AuditEvent
from compliance.services import login_attempt
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/"
WRONG = "not the password"
SPRAYED = [f"sprayed_user_{n:02d}" for n in range(1, 13)]


def attempt(client: Client, username: str, password: str = WRONG, **extra: Any) -> int:
    data = {"username": username, "password": password}
    return client.post(LOGIN, data, **extra).status_code


def spray(client: Client, usernames: list[str], **extra: Any) -> list[int]:
    return [attempt(client, name, **extra) for name in usernames]


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_twelve_usernames_from_one_ip_are_stopped_at_the_limit(
    client: Client,
) -> None:
    codes = spray(client, SPRAYED)

    assert codes == [200] * 9 + [429] * 3


def test_the_refusal_is_the_generic_lockout_response(client: Client) -> None:
    spray(client, SPRAYED[:10])

    response = client.post(LOGIN, {"username": "sprayed_user_11", "password": WRONG})

    assert response.status_code == 429
    assert MESSAGE in response.content.decode()
    assert "sprayed_user_11" not in response.content.decode()


def test_the_right_password_is_refused_from_a_locked_ip(
    client: Client, staff_member: Any
) -> None:
    spray(client, SPRAYED[:10])

    code = attempt(client, "staff_member", PASSWORD)

    assert code == 429
    assert signed_in(client) is False


def test_another_ip_is_unaffected(client: Client, staff_member: Any) -> None:
    spray(client, SPRAYED[:10])
    elsewhere = Client(REMOTE_ADDR="198.51.100.7")

    code = attempt(elsewhere, "staff_member", PASSWORD)

    assert code == 302
    assert signed_in(elsewhere) is True


def test_a_forged_forwarded_for_header_does_not_escape_the_ip_lock(
    client: Client, staff_member: Any, settings: Any
) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    codes = [
        attempt(client, name, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
        for n, name in enumerate(SPRAYED)
    ]

    code = attempt(
        client, "staff_member", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99"
    )

    assert codes == [200] * 9 + [429] * 3
    assert code == 429


def test_the_lock_is_audited_once_as_a_lockout_of_the_ip(client: Client) -> None:
    spray(client, SPRAYED)

    (event,) = AuditEvent.objects.filter(action=AuditAction.LOCKOUT)
    assert (event.system_principal, event.outcome, event.client_ip) == (
        "login_ip_throttle",
        "denied",
        "127.0.0.1",
    )
    assert event.details == {"scope": "ip", "failures": 10, "window_minutes": 15}


def test_refused_attempts_are_still_audited_as_blocked_failures(
    client: Client,
) -> None:
    spray(client, SPRAYED)

    blocked = AuditEvent.objects.filter(
        action=AuditAction.LOGIN_FAILED, details__blocked=True
    )
    assert blocked.count() == 3


def test_the_ip_lock_ends_after_its_window(client: Client, staff_member: Any) -> None:
    spray(client, SPRAYED[:10])

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=16)):
        code = attempt(client, "staff_member", PASSWORD)

    assert code == 302


def test_an_api_style_login_from_a_locked_ip_raises_locked_out(
    client: Client, staff_member: Any
) -> None:
    spray(client, SPRAYED[:10])
    request = RequestFactory().post("/api/v1/auth/login/")

    with pytest.raises(LockedOut):
        login_attempt(request=request, username="staff_member", password=PASSWORD)


def test_the_throttle_can_be_turned_off(client: Client, settings: Any) -> None:
    settings.LOGIN_FAILURES_PER_IP = 0

    assert spray(client, SPRAYED) == [200] * 12
