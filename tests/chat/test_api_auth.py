from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.chat.conftest import audit_rows
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "plum-orbit-canvas-71"


def register(client: APIClient, username: str, password: str = GOOD_PASSWORD) -> Any:
    return client.post(
        "/api/auth/register/",
        {"username": username, "password": password},
        format="json",
    )


def test_register_creates_an_account_and_audits(api: APIClient) -> None:
    response = register(api, "newcomer")

    assert response.status_code == 201
    user = get_user_model().objects.get(username="newcomer")
    assert response.json() == {"id": user.pk, "username": "newcomer"}
    assert user.check_password(GOOD_PASSWORD)
    assert len(audit_rows("USER_SIGNUP", target_id=str(user.pk))) == 1


def test_register_is_refused_when_signup_is_off(api: APIClient, settings: Any) -> None:
    settings.ALLOW_SIGNUP = False

    response = register(api, "newcomer")

    assert response.status_code == 403
    assert response.json()["error"] == "signup_closed"
    assert not get_user_model().objects.filter(username="newcomer").exists()


def test_register_refuses_a_username_taken_in_another_case(
    api: APIClient, patient: Any
) -> None:
    response = register(api, "PATIENT")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert response.json()["fields"] == ["username"]
    assert get_user_model().objects.count() == 1


@pytest.mark.parametrize(
    "password", ["sh7x", "password123", "12345678901", "newcomer1"]
)
def test_register_applies_the_password_validators(
    api: APIClient, password: str
) -> None:
    response = register(api, "newcomer", password)

    assert response.status_code == 400
    assert response.json()["fields"] == ["password"]
    assert password not in response.content.decode()


@pytest.mark.parametrize(
    "data",
    [
        {"username": 5, "password": GOOD_PASSWORD},
        {"username": "a b/c", "password": GOOD_PASSWORD},
        {"username": "x" * 151, "password": GOOD_PASSWORD},
        {"username": "newcomer", "password": "p" * 2000},
        {"username": "newcomer"},
    ],
)
def test_register_rejects_bad_fields(api: APIClient, data: dict[str, Any]) -> None:
    response = api.post("/api/auth/register/", data, format="json")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid"


def test_register_ignores_privilege_fields(api: APIClient) -> None:
    response = api.post(
        "/api/auth/register/",
        {
            "username": "newcomer",
            "password": GOOD_PASSWORD,
            "is_staff": True,
            "is_superuser": True,
        },
        format="json",
    )

    user = get_user_model().objects.get(pk=response.json()["id"])
    assert user.is_staff is False
    assert user.is_superuser is False


def test_token_login_returns_a_token_that_authenticates(
    api: APIClient, patient: Any
) -> None:
    response = api.post(
        "/api/auth/token/",
        {"username": "Patient", "password": PASSWORD},
        format="json",
    )

    assert response.status_code == 200
    token = response.json()["token"]
    assert Token.objects.get(user=patient).key == token
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/conversations/").status_code == 200


def test_token_login_with_a_wrong_password_gives_401(
    api: APIClient, patient: Any
) -> None:
    response = api.post(
        "/api/auth/token/",
        {"username": "patient", "password": "wrong"},
        format="json",
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"
    assert not Token.objects.filter(user=patient).exists()


def test_token_login_is_locked_out_after_repeated_failures(
    api: APIClient, patient: Any, settings: Any
) -> None:
    statuses = [
        api.post(
            "/api/auth/token/",
            {"username": "patient", "password": "wrong"},
            format="json",
        ).status_code
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]

    locked = api.post(
        "/api/auth/token/",
        {"username": "patient", "password": PASSWORD},
        format="json",
    )

    assert set(statuses) <= {401, 429}
    assert locked.status_code == 429
    assert locked["Content-Type"] == "application/json"
    assert locked.json()["error"] == "locked_out"


def test_logout_deletes_the_token(api: APIClient, patient: Any) -> None:
    token = Token.objects.create(user=patient)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = api.delete("/api/auth/token/")

    assert response.status_code == 204
    assert not Token.objects.filter(user=patient).exists()
    assert api.get("/api/conversations/").status_code == 401
    assert len(audit_rows("LOGOUT", actor=patient)) == 1


def test_logout_needs_authentication(api: APIClient) -> None:
    assert api.delete("/api/auth/token/").status_code in (401, 403)


def test_schema_renders_without_warnings(api: APIClient, tmp_path: Any) -> None:
    from django.core.management import call_command

    call_command(
        "spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/conversations/{id}/messages/" in paths
    assert "/api/auth/token/" in paths
