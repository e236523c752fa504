from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from chat.models import Conversation, Message
from tests.chat.conftest import audit_rows

pytestmark = pytest.mark.django_db

BODY = {"title": "renamed", "text": "my steps stopped syncing"}
ENDPOINTS = [
    ("get", "/api/conversations/{pk}/", 200),
    ("patch", "/api/conversations/{pk}/", 200),
    ("delete", "/api/conversations/{pk}/", 204),
    ("get", "/api/conversations/{pk}/export/", 200),
    ("post", "/api/conversations/{pk}/messages/", 201),
]


def call(client: APIClient, method: str, url: str) -> Any:
    if method in ("patch", "post"):
        return getattr(client, method)(url, BODY, format="json")
    return getattr(client, method)(url)


@pytest.mark.parametrize(("method", "url", "status"), ENDPOINTS)
def test_owner_can_use_every_conversation_endpoint(
    patient_api: APIClient,
    conversation: Conversation,
    method: str,
    url: str,
    status: int,
) -> None:
    response = call(patient_api, method, url.format(pk=conversation.pk))

    assert response.status_code == status
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("method", "url", "status"), ENDPOINTS)
def test_another_user_gets_404_on_every_verb_and_it_is_audited(
    other_api: APIClient,
    other_patient: Any,
    conversation: Conversation,
    method: str,
    url: str,
    status: int,
) -> None:
    response = call(other_api, method, url.format(pk=conversation.pk))

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    (event,) = audit_rows("ACCESS_DENIED", target_id=str(conversation.pk))
    assert event.actor_id == other_patient.pk
    assert Conversation.objects.get(pk=conversation.pk).messages.count() == 1


@pytest.mark.parametrize(("method", "url", "status"), ENDPOINTS)
@pytest.mark.parametrize("persona", ["staff_member", "admin_user"])
def test_staff_and_superusers_get_404_on_another_users_conversation_through_the_api(
    persona: str,
    request: pytest.FixtureRequest,
    conversation: Conversation,
    method: str,
    url: str,
    status: int,
) -> None:
    user = request.getfixturevalue(persona)
    client = APIClient()
    client.force_authenticate(user=user)

    response = call(client, method, url.format(pk=conversation.pk))

    assert response.status_code == 404
    (event,) = audit_rows("ACCESS_DENIED", target_id=str(conversation.pk))
    assert event.actor_id == user.pk
    assert Conversation.objects.get(pk=conversation.pk).messages.count() == 1


@pytest.mark.parametrize(("method", "url", "status"), ENDPOINTS)
def test_anonymous_gets_401_or_403_on_every_verb(
    api: APIClient, conversation: Conversation, method: str, url: str, status: int
) -> None:
    response = call(api, method, url.format(pk=conversation.pk))

    assert response.status_code in (401, 403)
    assert "error" in response.json()


@pytest.mark.parametrize("pk", ["999999", "-1", str(2**63), str(2**64), "abc", "1e3"])
@pytest.mark.parametrize(("method", "url", "status"), ENDPOINTS)
def test_odd_ids_give_json_404(
    patient_api: APIClient,
    conversation: Conversation,
    method: str,
    url: str,
    status: int,
    pk: str,
) -> None:
    response = call(patient_api, method, url.format(pk=pk))

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_the_list_shows_only_the_callers_conversations(
    patient_api: APIClient, other_patient: Any, conversation: Conversation
) -> None:
    from chat.services import conversation_start

    conversation_start(user=other_patient)

    response = patient_api.get(f"/api/conversations/?user={other_patient.pk}")

    assert response.status_code == 200
    assert [c["id"] for c in response.json()] == [conversation.pk]


def test_anonymous_cannot_list_or_create(api: APIClient) -> None:
    assert api.get("/api/conversations/").status_code in (401, 403)
    assert api.post("/api/conversations/", {}, format="json").status_code in (401, 403)
    assert api.get("/api/me/export/").status_code in (401, 403)


def test_creating_a_conversation_returns_201_with_its_id(
    patient_api: APIClient, patient: Any
) -> None:
    response = patient_api.post("/api/conversations/", {}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert Conversation.objects.get(pk=body["id"]).user == patient
    assert body["status"] == "active"
    assert body["title"] == ""


def test_creating_ignores_mass_assignment_fields(
    patient_api: APIClient, patient: Any, other_patient: Any
) -> None:
    response = patient_api.post(
        "/api/conversations/",
        {
            "title": "t",
            "user_id": other_patient.pk,
            "user": other_patient.pk,
            "status": "closed",
            "legal_hold": True,
        },
        format="json",
    )

    conversation = Conversation.objects.get(pk=response.json()["id"])
    assert conversation.user == patient
    assert conversation.status == "active"
    assert conversation.legal_hold is False


def test_detail_includes_the_messages_and_is_audited(
    patient_api: APIClient, conversation: Conversation
) -> None:
    response = patient_api.get(f"/api/conversations/{conversation.pk}/")

    body = response.json()
    assert body["id"] == conversation.pk
    assert [m["role"] for m in body["messages"]] == ["assistant"]
    assert body["messages"][0]["quick_replies"][0].keys() == {"label", "value"}
    assert len(audit_rows("CONVERSATION_VIEW", target_id=str(conversation.pk))) == 1


def test_rename_returns_the_sanitized_title(
    patient_api: APIClient, conversation: Conversation
) -> None:
    response = patient_api.patch(
        f"/api/conversations/{conversation.pk}/",
        {"title": "mail canary.patient@example.org"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["title"] == "mail [EMAIL]"


def test_a_title_longer_than_the_limit_is_refused_not_cut(
    patient_api: APIClient, conversation: Conversation
) -> None:
    from chat.services_conversations import TITLE_MAX_CHARS

    response = patient_api.patch(
        f"/api/conversations/{conversation.pk}/",
        {"title": "x" * (TITLE_MAX_CHARS + 1)},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["fields"] == ["title"]


def test_the_export_shows_a_timed_out_conversation_as_closed(
    patient_api: APIClient, conversation: Conversation, settings: Any
) -> None:
    settings.SESSION_TIMEOUT_HOURS = 1

    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        data = patient_api.get(f"/api/conversations/{conversation.pk}/export/").json()

    assert data["conversations"][0]["status"] == "closed"


def test_rename_requires_a_string_title(
    patient_api: APIClient, conversation: Conversation
) -> None:
    response = patient_api.patch(
        f"/api/conversations/{conversation.pk}/", {"title": 5}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["fields"] == ["title"]


def test_delete_under_legal_hold_gives_409(
    patient_api: APIClient, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(legal_hold=True)

    response = patient_api.delete(f"/api/conversations/{conversation.pk}/")

    assert response.status_code == 409
    assert response.json()["error"] == "conversation_locked"


def test_export_endpoints_are_downloads_of_own_data(
    patient_api: APIClient, patient: Any, conversation: Conversation
) -> None:
    mine = patient_api.get("/api/me/export/")
    one = patient_api.get(f"/api/conversations/{conversation.pk}/export/")

    assert mine.status_code == 200
    assert "attachment" in mine["Content-Disposition"]
    assert mine.json()["account"]["id"] == patient.pk
    assert [c["id"] for c in one.json()["conversations"]] == [conversation.pk]
    assert len(audit_rows("CONVERSATION_EXPORT", actor=patient)) == 2


def test_message_post_returns_the_contract_shape(
    patient_api: APIClient, conversation: Conversation
) -> None:
    response = patient_api.post(
        f"/api/conversations/{conversation.pk}/messages/",
        {"text": "my steps stopped syncing on my Samsung"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body.keys() == {"conversation_id", "user_message", "reply"}
    assert body["conversation_id"] == conversation.pk
    assert body["user_message"].keys() == {"id", "text", "redactions"}
    assert body["reply"].keys() == {"id", "text", "source", "quick_replies", "notice"}
    assert body["reply"]["source"] == "rules"
    assert body["reply"]["text"]
    assert all(q.keys() == {"label", "value"} for q in body["reply"]["quick_replies"])


def test_a_quick_reply_is_routed_by_value(
    patient_api: APIClient, conversation: Conversation
) -> None:
    response = patient_api.post(
        f"/api/conversations/{conversation.pk}/messages/",
        {"quick_reply": "platform_android"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["user_message"]["text"] == "Android"
    conversation.refresh_from_db()
    assert conversation.state["platform"] == "android"


def test_an_unknown_quick_reply_gives_400(
    patient_api: APIClient, conversation: Conversation
) -> None:
    response = patient_api.post(
        f"/api/conversations/{conversation.pk}/messages/",
        {"quick_reply": "drop_tables"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["fields"] == ["quick_reply"]


def test_a_message_to_a_closed_conversation_is_answered_in_a_new_one(
    patient_api: APIClient, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(status="closed")

    response = patient_api.post(
        f"/api/conversations/{conversation.pk}/messages/", {"text": "hi"}, format="json"
    )

    assert response.status_code == 201
    successor = response.json()["conversation_id"]
    assert successor != conversation.pk
    assert Conversation.objects.get(pk=successor).continued_from_id == conversation.pk


def test_the_idempotency_key_header_makes_a_retry_safe(
    patient_api: APIClient, conversation: Conversation
) -> None:
    url = f"/api/conversations/{conversation.pk}/messages/"
    headers = {"HTTP_IDEMPOTENCY_KEY": "9b2f6c1e-0000-4000-8000-000000000001"}

    first = patient_api.post(url, {"text": "fitbit"}, format="json", **headers)
    second = patient_api.post(url, {"text": "fitbit"}, format="json", **headers)

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert conversation.messages.count() == 3


def test_a_malformed_idempotency_key_gives_400(
    patient_api: APIClient, conversation: Conversation
) -> None:
    response = patient_api.post(
        f"/api/conversations/{conversation.pk}/messages/",
        {"text": "fitbit"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="has spaces and / slashes",
    )

    assert response.status_code == 400
    assert response.json()["fields"] == ["Idempotency-Key"]


def test_token_auth_works_for_api_clients(
    patient: Any, conversation: Conversation
) -> None:
    token = Token.objects.create(user=patient)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = client.get(f"/api/conversations/{conversation.pk}/")

    assert response.status_code == 200


def test_a_bad_token_gives_401(conversation: Conversation) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    response = client.get(f"/api/conversations/{conversation.pk}/")

    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"


def test_session_auth_needs_csrf_for_writes(
    patient: Any, conversation: Conversation
) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(patient)

    response = client.post(
        f"/api/conversations/{conversation.pk}/messages/", {"text": "hi"}, format="json"
    )

    assert response.status_code == 403
    assert Message.objects.filter(conversation=conversation).count() == 1


def test_a_conversation_idle_past_the_timeout_closes_and_the_turn_continues_anew(
    patient_api: APIClient, conversation: Conversation, settings: Any
) -> None:
    settings.SESSION_TIMEOUT_HOURS = 1
    later = timezone.now() + timedelta(hours=2)

    with time_machine.travel(later):
        response = patient_api.post(
            f"/api/conversations/{conversation.pk}/messages/",
            {"text": "hello again"},
            format="json",
        )
        old = patient_api.get(f"/api/conversations/{conversation.pk}/").json()

    assert response.status_code == 201
    assert response.json()["conversation_id"] != conversation.pk
    assert old["status"] == "closed"


def test_a_retry_while_the_first_is_being_answered_gives_409_in_progress(
    patient_api: APIClient, conversation: Conversation
) -> None:
    from chat.services import idempotency_digest

    Message.objects.create(
        conversation=conversation,
        role="user",
        text="fitbit",
        idempotency_key=idempotency_digest("busy-key"),
    )

    response = patient_api.post(
        f"/api/conversations/{conversation.pk}/messages/",
        {"text": "fitbit"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="busy-key",
    )

    assert response.status_code == 409
    assert response.json()["error"] == "in_progress"
