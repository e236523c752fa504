"""Account pages: sign-up, login, logout, password change, redirects and CSRF."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.sessions.models import Session
from django.test import Client

from tests.chat.conftest import audit_rows
from tests.factories import PASSWORD

NEW_PASSWORD = "a much longer passphrase 917"
SIGNUP = {"username": "NewWalker", "password1": PASSWORD, "password2": PASSWORD}


@pytest.fixture
def hashing_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every password hash computed or checked (the test hasher is MD5)."""
    calls: list[str] = []
    real_encode, real_verify = MD5PasswordHasher.encode, MD5PasswordHasher.verify

    def encode(self: Any, password: str, salt: str) -> str:
        calls.append("encode")
        return real_encode(self, password, salt)

    def verify(self: Any, password: str, encoded: str) -> bool:
        calls.append("verify")
        return real_verify(self, password, encoded)

    monkeypatch.setattr(MD5PasswordHasher, "encode", encode)
    monkeypatch.setattr(MD5PasswordHasher, "verify", verify)
    return calls


def session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def login(client: Client, **extra: str) -> Any:
    data = {"username": "patient", "password": PASSWORD, **extra}
    return client.post("/login/", data)


@pytest.mark.django_db
def test_sign_up_creates_the_account_and_signs_the_user_in(client: Client) -> None:
    response = client.post("/signup/", SIGNUP)

    assert response.status_code == 302
    assert response["Location"] == "/conversations/"
    assert client.get("/conversations/").status_code == 200


@pytest.mark.django_db
def test_sign_up_is_audited(client: Client) -> None:
    client.post("/signup/", SIGNUP)

    user = get_user_model().objects.get(username="NewWalker")
    assert [row.actor_id for row in audit_rows("USER_SIGNUP")] == [user.pk]


def test_sign_up_refuses_a_username_taken_in_another_case(
    client: Client, patient: Any
) -> None:
    response = client.post("/signup/", {**SIGNUP, "username": "PATIENT"})

    assert response.status_code == 400
    assert "not available" in response.content.decode()
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_sign_up_applies_the_password_validators(client: Client) -> None:
    weak = {**SIGNUP, "password1": "12345678", "password2": "12345678"}

    response = client.post("/signup/", weak)

    assert response.status_code == 400
    assert get_user_model().objects.exists() is False


@pytest.mark.django_db
def test_sign_up_refuses_two_different_passwords(client: Client) -> None:
    response = client.post("/signup/", {**SIGNUP, "password2": NEW_PASSWORD})

    assert response.status_code == 400
    assert get_user_model().objects.exists() is False


@pytest.mark.django_db
def test_sign_up_closed_shows_a_clear_page(client: Client, settings: Any) -> None:
    settings.ALLOW_SIGNUP = False

    response = client.get("/signup/")

    assert response.status_code == 404
    assert "Sign-up is closed" in response.content.decode()


@pytest.mark.django_db
def test_sign_up_closed_creates_no_account(client: Client, settings: Any) -> None:
    settings.ALLOW_SIGNUP = False

    client.post("/signup/", SIGNUP)

    assert get_user_model().objects.exists() is False


def test_login_signs_the_user_in(client: Client, patient: Any) -> None:
    response = login(client)

    assert response.status_code == 302
    assert client.get("/conversations/").status_code == 200


def test_login_with_a_wrong_password_fails(client: Client, patient: Any) -> None:
    response = client.post("/login/", {"username": "patient", "password": "nope"})

    assert response.status_code == 200
    assert "didn't match" in response.content.decode()


def test_login_ignores_the_case_of_the_username(client: Client, patient: Any) -> None:
    response = client.post("/login/", {"username": "PaTiEnT", "password": PASSWORD})

    assert response.status_code == 302


def test_login_changes_the_session_key(client: Client, patient: Any) -> None:
    session = client.session
    session["seen_start_page"] = True
    session.save()
    before = session_key(client)

    login(client)

    assert session_key(client) != before
    assert Session.objects.filter(session_key=before).exists() is False


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
    ],
)
def test_login_refuses_to_redirect_off_site(
    client: Client, patient: Any, target: str
) -> None:
    response = login(client, next=target)

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_login_follows_a_local_next_url(client: Client, patient: Any) -> None:
    response = login(client, next="/conversations/")

    assert response["Location"] == "/conversations/"


def test_a_huge_password_is_refused_before_hashing(
    client: Client, patient: Any, hashing_calls: list[str]
) -> None:
    response = client.post(
        "/login/", {"username": "patient", "password": "x" * 1_000_000}
    )

    assert response.status_code == 400
    assert hashing_calls == []


def test_a_long_password_under_the_body_limit_is_refused_before_hashing(
    client: Client, patient: Any, hashing_calls: list[str]
) -> None:
    response = client.post("/login/", {"username": "patient", "password": "x" * 5000})

    assert response.status_code == 200
    assert hashing_calls == []


@pytest.mark.django_db
def test_a_huge_sign_up_password_is_refused_before_hashing(
    client: Client, hashing_calls: list[str]
) -> None:
    long = "y" * 5000

    response = client.post("/signup/", {**SIGNUP, "password1": long, "password2": long})

    assert response.status_code == 400
    assert hashing_calls == []


def test_logout_needs_a_post(client: Client, patient: Any) -> None:
    login(client)

    response = client.get("/logout/")

    assert response.status_code == 405


def test_logout_ends_the_server_session(client: Client, patient: Any) -> None:
    login(client)
    key = session_key(client)

    client.post("/logout/")

    assert Session.objects.filter(session_key=key).exists() is False


def test_the_old_session_cookie_does_not_work_after_logout(
    patient: Any,
) -> None:
    client = Client()
    login(client)
    stolen = Client()
    stolen.cookies[settings.SESSION_COOKIE_NAME] = session_key(client)
    client.post("/logout/")

    response = stolen.get("/conversations/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_password_change_works_and_is_audited(client: Client, patient: Any) -> None:
    login(client)
    data = {
        "old_password": PASSWORD,
        "new_password1": NEW_PASSWORD,
        "new_password2": NEW_PASSWORD,
    }

    response = client.post("/password/change/", data)

    assert response["Location"] == "/password/change/done/"
    patient.refresh_from_db()
    assert patient.check_password(NEW_PASSWORD) is True
    assert [r.actor_id for r in audit_rows("PASSWORD_CHANGE")] == [patient.pk]


def test_password_change_logs_out_other_sessions(patient: Any) -> None:
    here, elsewhere = Client(), Client()
    login(here)
    login(elsewhere)
    data = {
        "old_password": PASSWORD,
        "new_password1": NEW_PASSWORD,
        "new_password2": NEW_PASSWORD,
    }

    here.post("/password/change/", data)

    assert here.get("/conversations/").status_code == 200
    assert elsewhere.get("/conversations/").status_code == 302


def test_password_change_needs_the_current_password(
    client: Client, patient: Any
) -> None:
    login(client)
    data = {
        "old_password": "wrong",
        "new_password1": NEW_PASSWORD,
        "new_password2": NEW_PASSWORD,
    }

    response = client.post("/password/change/", data)

    assert response.status_code == 200
    patient.refresh_from_db()
    assert patient.check_password(PASSWORD) is True


def test_password_change_page_needs_login(client: Client, db: None) -> None:
    response = client.get("/password/change/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/login/", {"username": "patient", "password": PASSWORD}),
        ("/signup/", SIGNUP),
    ],
)
def test_account_forms_enforce_csrf(
    patient: Any, url: str, data: dict[str, str]
) -> None:
    client = Client(enforce_csrf_checks=True)

    response = client.post(url, data)

    assert response.status_code == 403


def test_logout_enforces_csrf(patient: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(patient)

    response = client.post("/logout/")

    assert response.status_code == 403
    assert client.get("/conversations/").status_code == 200
