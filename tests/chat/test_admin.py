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


# --- Nobody deletes from the admin; legal holds need their own permission ----------


@pytest.fixture
def superuser_client(db: None) -> Client:
    from tests.factories import make_user

    user = make_user(username="root_admin", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def action_choices(client: Client, url: str) -> list[str]:
    form = client.get(url).context["action_form"]
    return [] if form is None else [name for name, _ in form.fields["action"].choices]


def test_a_superuser_cannot_delete_a_conversation_from_the_admin(
    superuser_client: Client, conversation: Conversation
) -> None:
    url = f"/admin/chat/conversation/{conversation.pk}/delete/"

    response = superuser_client.post(url, {"post": "yes"})

    assert response.status_code == 403
    assert Conversation.objects.filter(pk=conversation.pk).exists() is True
    assert "delete_selected" not in action_choices(
        superuser_client, "/admin/chat/conversation/"
    )


def test_a_superuser_cannot_delete_messages_add_or_change_conversations(
    superuser_client: Client, message: Message
) -> None:
    conversation_url = f"/admin/chat/conversation/{message.conversation_id}/change/"

    deleted = superuser_client.post(
        f"/admin/chat/message/{message.pk}/delete/", {"post": "yes"}
    )
    added = superuser_client.get("/admin/chat/conversation/add/")
    changed = superuser_client.post(conversation_url, {"status": "closed"})

    assert (deleted.status_code, added.status_code, changed.status_code) == (
        403,
        403,
        403,
    )
    assert Message.objects.filter(pk=message.pk).exists() is True
    assert "delete_selected" not in action_choices(
        superuser_client, "/admin/chat/message/"
    )


def hold_action(
    client: Client, action: str, conversation: Conversation, **form: str
) -> Any:
    return client.post(
        "/admin/chat/conversation/",
        {
            "action": action,
            "_selected_action": [conversation.pk],
            "apply": "yes",
            **form,
        },
    )


def test_the_legal_hold_actions_need_the_explicit_permission(
    staff_client: Client, conversation: Conversation
) -> None:
    choices = action_choices(staff_client, "/admin/chat/conversation/")

    hold_action(staff_client, "place_legal_hold", conversation, reason="litigation")

    conversation.refresh_from_db()
    assert "place_legal_hold" not in choices
    assert conversation.legal_hold is False
    assert audit_rows("LEGAL_HOLD_CHANGE") == []


def test_placing_and_releasing_a_hold_from_the_admin_is_audited(
    staff_client: Client, staff_member: Any, conversation: Conversation
) -> None:
    grant(staff_member, "set_legal_hold")

    hold_action(staff_client, "place_legal_hold", conversation, reason="litigation")
    held = Conversation.objects.get(pk=conversation.pk).legal_hold
    hold_action(
        staff_client, "release_legal_hold", conversation, reason="matter_closed"
    )

    conversation.refresh_from_db()
    place, release = audit_rows("LEGAL_HOLD_CHANGE")
    assert (held, conversation.legal_hold) == (True, False)
    assert (place.actor_id, place.target_id) == (
        staff_member.pk,
        str(conversation.pk),
    )
    assert place.details == {"on": True, "reason": "litigation"}
    assert release.details == {"on": False, "reason": "matter_closed"}


def test_the_hold_action_first_asks_for_a_reason(
    staff_client: Client, staff_member: Any, conversation: Conversation
) -> None:
    grant(staff_member, "set_legal_hold")

    response = staff_client.post(
        "/admin/chat/conversation/",
        {"action": "place_legal_hold", "_selected_action": [conversation.pk]},
    )

    conversation.refresh_from_db()
    assert response.status_code == 200
    assert 'name="reason"' in response.content.decode()
    assert conversation.legal_hold is False


def test_an_unknown_incident_reference_is_refused_without_echoing_it(
    staff_client: Client, staff_member: Any, conversation: Conversation
) -> None:
    grant(staff_member, "set_legal_hold")

    response = hold_action(
        staff_client,
        "place_legal_hold",
        conversation,
        reason="incident_investigation",
        incident_reference="PHI-1999-999",
    )

    conversation.refresh_from_db()
    assert response.status_code == 200
    assert "No incident has that reference." in response.content.decode()
    assert conversation.legal_hold is False
    assert audit_rows("LEGAL_HOLD_CHANGE") == []
