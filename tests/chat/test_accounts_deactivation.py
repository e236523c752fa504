"""Deactivating a user ends their sessions and API tokens on the server."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from rest_framework.authtoken.models import Token

from accounts.services import user_deactivate
from tests.chat.conftest import audit_rows
from tests.factories import PASSWORD


def signed_in_client(user: Any) -> Client:
    client = Client()
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def sessions_of(user: Any) -> int:
    return sum(
        1
        for s in Session.objects.all()
        if str(s.get_decoded().get("_auth_user_id")) == str(user.pk)
    )


def test_a_deactivated_users_existing_session_is_refused(patient: Any) -> None:
    client = signed_in_client(patient)
    get_user_model().objects.filter(pk=patient.pk).update(is_active=False)

    response = client.get("/conversations/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_refused_session_of_a_deactivated_user_is_deleted(patient: Any) -> None:
    client = signed_in_client(patient)
    get_user_model().objects.filter(pk=patient.pk).update(is_active=False)

    client.get("/conversations/")

    assert sessions_of(patient) == 0


def test_user_deactivate_ends_every_session_of_that_user_only(
    patient: Any, other_patient: Any, staff_member: Any
) -> None:
    signed_in_client(patient)
    signed_in_client(patient)
    bystander = signed_in_client(other_patient)

    ended = user_deactivate(user=patient, actor=staff_member)

    assert ended == 2
    assert sessions_of(patient) == 0
    assert bystander.get("/conversations/").status_code == 200


def test_user_deactivate_deletes_the_users_api_tokens(
    patient: Any, staff_member: Any
) -> None:
    Token.objects.create(user=patient)

    user_deactivate(user=patient, actor=staff_member)

    assert Token.objects.filter(user=patient).exists() is False


def test_user_deactivate_is_audited(patient: Any, staff_member: Any) -> None:
    signed_in_client(patient)

    user_deactivate(user=patient, actor=staff_member)

    rows = audit_rows("ACCOUNT_DEACTIVATED")
    assert [(r.actor_id, r.target_id, r.details) for r in rows] == [
        (staff_member.pk, str(patient.pk), {"sessions_ended": 1})
    ]


def test_a_deactivated_user_cannot_log_in(patient: Any, staff_member: Any) -> None:
    user_deactivate(user=patient, actor=staff_member)

    response = Client().post("/login/", {"username": "patient", "password": PASSWORD})

    assert response.status_code == 200


def test_the_admin_action_deactivates_and_ends_sessions(
    mfa_admin_client: Client, patient: Any
) -> None:
    signed_in_client(patient)

    response = mfa_admin_client.post(
        "/admin/accounts/user/",
        {"action": "deactivate_users", "_selected_action": [patient.pk]},
    )

    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.is_active is False
    assert sessions_of(patient) == 0
