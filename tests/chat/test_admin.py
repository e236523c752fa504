from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from chat.models import Conversation, Message
from chat.services import message_send
from tests.chat.conftest import audit_rows

pytestmark = pytest.mark.django_db

PHRASE = "purple elephant firmware"


@pytest.fixture(autouse=True)
def _no_mfa(settings: Any) -> None:
    settings.MFA_REQUIRED_FOR_STAFF = False


@pytest.fixture
def message(patient: Any, conversation: Conversation) -> Message:
    outcome = message_send(
        user=patient, conversation=conversation, text=f"my {PHRASE} broke sync"
    )
    return outcome.user_message


def grant(user: Any, *codenames: str) -> None:
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


@pytest.fixture
def staff_client(staff_member: Any) -> Client:
    grant(staff_member, "view_conversation", "view_message")
    client = Client()
    client.force_login(staff_member)
    return client


def test_message_list_never_shows_content(
    staff_client: Client, message: Message
) -> None:
    response = staff_client.get("/admin/chat/message/")

    assert response.status_code == 200
    assert PHRASE not in response.content.decode()
    assert f">{message.pk}<" in response.content.decode()


def test_search_does_not_match_content(staff_client: Client, message: Message) -> None:
    response = staff_client.get("/admin/chat/message/", {"q": "elephant"})

    assert response.status_code == 200
    assert "0 messages" in response.content.decode() or "0 results" in (
        response.content.decode()
    )


def test_conversation_pages_never_show_content(
    staff_client: Client, message: Message
) -> None:
    listing = staff_client.get("/admin/chat/conversation/")
    detail = staff_client.get(
        f"/admin/chat/conversation/{message.conversation_id}/change/"
    )

    assert listing.status_code == detail.status_code == 200
    assert PHRASE not in listing.content.decode()
    assert PHRASE not in detail.content.decode()


def test_message_page_hides_content_without_the_permission(
    staff_client: Client, message: Message
) -> None:
    response = staff_client.get(
        f"/admin/chat/message/{message.pk}/change/", {"show_content": "1"}
    )

    assert response.status_code == 200
    assert PHRASE not in response.content.decode()
    assert audit_rows("STAFF_CONTENT_VIEW") == []


def test_message_content_is_shown_with_the_permission_and_audited(
    staff_client: Client, staff_member: Any, message: Message
) -> None:
    grant(staff_member, "view_conversation_content")

    hidden = staff_client.get(f"/admin/chat/message/{message.pk}/change/")
    shown = staff_client.get(
        f"/admin/chat/message/{message.pk}/change/", {"show_content": "1"}
    )

    assert PHRASE not in hidden.content.decode()
    assert PHRASE in shown.content.decode()
    (event,) = audit_rows("STAFF_CONTENT_VIEW")
    assert event.actor_id == staff_member.pk
    assert event.target_id == str(message.conversation_id)


def test_staff_cannot_add_or_change_messages(
    staff_client: Client, message: Message
) -> None:
    assert staff_client.get("/admin/chat/message/add/").status_code == 403
    response = staff_client.post(
        f"/admin/chat/message/{message.pk}/change/", {"role": "assistant"}
    )
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.role == "user"


def test_staff_without_model_permissions_get_403(
    staff_member: Any, message: Message
) -> None:
    client = Client()
    client.force_login(staff_member)

    response = client.get(f"/admin/chat/message/{message.pk}/change/")

    assert response.status_code == 403


def test_a_patient_is_sent_to_the_admin_login(patient: Any, message: Message) -> None:
    client = Client()
    client.force_login(patient)

    response = client.get(f"/admin/chat/message/{message.pk}/change/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
