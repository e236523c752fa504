"""django-axes lockouts: the limit, bypass attempts, cool-off, the page, the audit."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import time_machine
from axes.models import AccessAttempt
from axes.utils import reset
from django.test import RequestFactory
from django.utils import timezone

from compliance.exceptions import LockedOut
from compliance.lockout import lockout_response
from compliance.models import AuditAction, AuditEvent
from compliance.services import login_attempt, pseudonym
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/"


WRONG = "not the password"


def attempt(client: Any, username: str, password: str = WRONG, **extra: Any) -> Any:
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def fail(client: Any, username: str, times: int, **extra: Any) -> list[int]:
    return [attempt(client, username, **extra).status_code for _ in range(times)]


def signed_in(client: Any) -> bool:
    return "_auth_user_id" in client.session


def actions(*names: str) -> list[str]:
    return list(
        AuditEvent.objects.filter(action__in=names)
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_four_failures_do_not_lock_and_the_right_password_works(
    client: Any, staff_member: Any
) -> None:
    assert fail(client, "staff_member", 4) == [200] * 4

    attempt(client, "staff_member", PASSWORD)

    assert signed_in(client) is True


def test_the_fifth_failure_on_the_admin_login_locks_the_account(
    client: Any, staff_member: Any
) -> None:
    assert fail(client, "staff_member", 5) == [200, 200, 200, 200, 429]


def test_the_right_password_is_refused_once_locked(
    client: Any, staff_member: Any
) -> None:
    fail(client, "staff_member", 5)

    response = attempt(client, "staff_member", PASSWORD)

    assert response.status_code == 429
    assert signed_in(client) is False


def test_a_success_resets_the_counter(client: Any, staff_member: Any) -> None:
    fail(client, "staff_member", 4)
    attempt(client, "staff_member", PASSWORD)
    client.logout()

    assert fail(client, "staff_member", 4) == [200] * 4


def test_case_and_space_variants_share_one_counter(
    client: Any, staff_member: Any
) -> None:
    variants = ["Staff_Member", "STAFF_MEMBER", " staff_member ", "sTaff_member"]
    for name in variants:
        attempt(client, name)

    assert attempt(client, "staff_member").status_code == 429
    assert set(AccessAttempt.objects.values_list("username", flat=True)) == {
        "staff_member"
    }


def test_a_forged_forwarded_for_header_does_not_make_new_buckets(
    client: Any, staff_member: Any
) -> None:
    codes = [
        attempt(
            client, "staff_member", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}"
        ).status_code
        for n in range(5)
    ]

    assert codes[-1] == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {
        "127.0.0.1"
    }


def test_behind_one_proxy_only_the_proxy_seen_address_counts(
    client: Any, staff_member: Any, settings: Any
) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(5):
        attempt(client, "staff_member", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 192.0.2.7")

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {
        "192.0.2.7"
    }


def test_the_same_username_from_many_addresses_is_locked(
    client: Any, staff_member: Any
) -> None:
    codes = [
        attempt(client, "staff_member", REMOTE_ADDR=f"192.0.2.{n}").status_code
        for n in range(5)
    ]

    assert codes[-1] == 429
    assert (
        attempt(client, "staff_member", PASSWORD, REMOTE_ADDR="192.0.2.99").status_code
        == 429
    )


def test_the_lock_lasts_the_cool_off_and_then_expires(
    client: Any, staff_member: Any, settings: Any
) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        fail(client, "staff_member", 5)
    with time_machine.travel(start + dt.timedelta(minutes=29), tick=False):
        assert attempt(client, "staff_member", PASSWORD).status_code == 429
    with time_machine.travel(start + dt.timedelta(minutes=31), tick=False):
        attempt(client, "staff_member", PASSWORD)

        assert signed_in(client) is True


def test_the_lockout_page_reveals_nothing(client: Any, staff_member: Any) -> None:
    fail(client, "staff_member", 5)

    body = attempt(client, "staff_member").content.decode()

    assert "Too many attempts" in body
    assert "staff_member" not in body
    assert "5" not in body.split("<main", 1)[-1].split("</main>", 1)[0]


def test_the_api_lockout_answer_is_generic_json() -> None:
    request = RequestFactory().post("/api/auth/token/")

    response = lockout_response(request, None, {"username": "someone"})

    assert response.status_code == 429
    assert json.loads(response.content) == {
        "error": "locked_out",
        "message": "Too many attempts. Try again later.",
    }


def test_login_attempt_counts_through_axes_and_raises_locked_out(
    staff_member: Any,
) -> None:
    factory = RequestFactory()
    results = []
    for _ in range(4):
        results.append(
            login_attempt(
                request=factory.post("/api/auth/token/"),
                username="STAFF_MEMBER",
                password="x",
            )
        )

    with pytest.raises(LockedOut):
        login_attempt(
            request=factory.post("/api/auth/token/"),
            username="staff_member",
            password="x",
        )
    with pytest.raises(LockedOut):
        login_attempt(
            request=factory.post("/api/auth/token/"),
            username="staff_member",
            password=PASSWORD,
        )
    assert results == [None] * 4


def test_login_attempt_returns_the_user_and_audits_the_login(staff_member: Any) -> None:
    request = RequestFactory().post("/api/auth/token/")

    user = login_attempt(request=request, username="Staff_Member", password=PASSWORD)

    assert user == staff_member
    event = AuditEvent.objects.filter(action=AuditAction.LOGIN).get()
    assert (event.actor_id, event.details) == (staff_member.pk, {"channel": "api"})


def test_failures_lockout_and_refusals_are_audited_once_each(
    client: Any, staff_member: Any
) -> None:
    fail(client, "staff_member", 7)

    # axes signals the lockout while handling the fifth failure, before it is logged.
    assert (
        actions("login_failed", "lockout")
        == ["login_failed"] * 4 + ["lockout"] + ["login_failed"] * 3
    )
    blocked = AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED)
    assert [e.details["blocked"] for e in blocked.order_by("seq")] == [False] * 4 + [
        True
    ] * 3
    lock = AuditEvent.objects.get(action=AuditAction.LOCKOUT)
    assert (lock.target_type, lock.target_id) == ("user", str(staff_member.pk))
    assert lock.details["username_ps"] == pseudonym("staff_member")
    assert lock.details["failures"] == 5


def test_a_failed_login_stores_a_pseudonym_never_the_username(client: Any) -> None:
    attempt(client, "Nobody_Here")

    event = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert event.details["username_ps"] == pseudonym("nobody_here")
    assert "nobody" not in json.dumps(event.details).lower()
    assert event.target_id == ""


def test_an_axes_reset_is_audited_as_unlock(client: Any, staff_member: Any) -> None:
    fail(client, "staff_member", 5)

    reset(username="staff_member")

    unlock = AuditEvent.objects.get(action=AuditAction.UNLOCK)
    assert unlock.details["reason"] == "reset"
    assert unlock.target_id == str(staff_member.pk)


def test_cool_off_expiry_is_audited_as_unlock(client: Any, staff_member: Any) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        fail(client, "staff_member", 5)
    with time_machine.travel(start + dt.timedelta(minutes=31), tick=False):
        attempt(client, "staff_member", PASSWORD)

    assert AuditEvent.objects.get(action=AuditAction.UNLOCK).details["reason"] == (
        "cooloff_expired"
    )


def test_login_and_logout_are_audited(client: Any, staff_member: Any) -> None:
    attempt(client, "staff_member", PASSWORD)
    client.post("/admin/logout/")

    assert actions("login", "logout") == ["login", "logout"]


def test_axes_attempt_records_keep_no_query_or_form_data(
    client: Any, staff_member: Any
) -> None:
    url = f"{LOGIN}?next=/admin/chat/conversation/41/change/"
    for _ in range(2):
        client.post(
            url, {"username": "staff_member", "password": WRONG, "extra": "555-0142"}
        )

    attempt_row = AccessAttempt.objects.get()
    assert attempt_row.failures_since_start == 2
    assert (attempt_row.get_data, attempt_row.post_data) == ("", "")
