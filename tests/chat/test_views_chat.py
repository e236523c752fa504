"""The chat page without JavaScript: post, redirect, see the reply and the notices."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from chat.models import Conversation, Message
from chat.notices import FALLBACK_NOTICE

SAMSUNG = "my steps stopped syncing on my Samsung"
CANARY_EMAIL = "canary.patient@example.org"
CANARY_SSN = "123-45-6789"


@pytest.fixture
def owner(client: Client, patient: Any) -> Client:
    client.force_login(patient)
    return client


def send(client: Client, conversation: Conversation, **data: str) -> Any:
    return client.post(f"/conversations/{conversation.pk}/messages/", data)


def page(client: Client, conversation: Conversation) -> str:
    return client.get(f"/conversations/{conversation.pk}/").content.decode()


def test_new_conversation_opens_with_the_assistants_welcome(owner: Client) -> None:
    response = owner.post("/conversations/new/", follow=True)

    html = response.content.decode()
    assert "AI assistant" in html
    assert 'name="quick_reply" value="steps_not_syncing"' in html


def test_a_message_posts_and_redirects_back_to_the_chat(
    owner: Client, conversation: Conversation
) -> None:
    response = send(owner, conversation, text=SAMSUNG)

    assert response.status_code == 302
    assert response["Location"] == f"/conversations/{conversation.pk}/#latest"


def test_the_chat_shows_the_message_and_the_assistants_reply(
    owner: Client, conversation: Conversation
) -> None:
    send(owner, conversation, text=SAMSUNG)

    html = page(owner, conversation)

    assert SAMSUNG in html
    assert "Where do your steps come from?" in html
    assert html.count("AI assistant</span>") == 2


def test_a_quick_reply_is_routed_by_its_value(
    owner: Client, conversation: Conversation
) -> None:
    send(owner, conversation, text=SAMSUNG)

    send(owner, conversation, quick_reply="source_samsung_health")

    user_turns = conversation.messages.filter(role=Message.Role.USER)
    assert [m.text for m in user_turns] == [SAMSUNG, "Samsung Health"]
    assert conversation.messages.count() == 5


def test_only_the_latest_replys_quick_replies_are_offered(
    owner: Client, conversation: Conversation
) -> None:
    send(owner, conversation, text=SAMSUNG)

    html = page(owner, conversation)

    assert 'value="source_samsung_health"' in html
    assert 'value="steps_not_syncing"' not in html


def test_the_redaction_notice_names_types_and_counts(
    owner: Client, conversation: Conversation
) -> None:
    text = f"my fitbit stopped, reach me at {CANARY_EMAIL} or 555-0142"

    send(owner, conversation, text=text)

    html = page(owner, conversation)
    assert (
        "We removed 1 e-mail address and 1 phone number before saving your message"
        in html
    )


def test_the_redacted_value_never_reaches_the_page(
    owner: Client, conversation: Conversation
) -> None:
    send(owner, conversation, text=f"my fitbit stopped, reach me at {CANARY_EMAIL}")

    html = page(owner, conversation)

    assert CANARY_EMAIL not in html
    assert "[EMAIL]" in html


def test_a_blocked_message_says_which_type_without_the_value(
    owner: Client, conversation: Conversation, settings: Any
) -> None:
    settings.PHI_SANITIZER_STRICT_MODE = True

    response = send(owner, conversation, text=f"my ssn is {CANARY_SSN}")

    html = owner.get(response["Location"]).content.decode()
    assert "not sent because it contained: Social Security number" in html
    assert CANARY_SSN not in html


def test_a_blocked_message_is_not_stored(
    owner: Client, conversation: Conversation, settings: Any
) -> None:
    settings.PHI_SANITIZER_STRICT_MODE = True

    send(owner, conversation, text=f"my ssn is {CANARY_SSN}")

    assert conversation.messages.filter(role=Message.Role.USER).exists() is False


def test_an_empty_message_is_refused_with_a_notice(
    owner: Client, conversation: Conversation
) -> None:
    response = send(owner, conversation, text="   ")

    html = owner.get(response["Location"]).content.decode()
    assert "Type a message or choose one of the options." in html
    assert conversation.messages.count() == 1


def test_a_too_long_message_is_refused_without_echoing_it(
    owner: Client, conversation: Conversation, settings: Any
) -> None:
    settings.MAX_MESSAGE_CHARS = 50
    text = f"{CANARY_EMAIL} " * 5

    response = send(owner, conversation, text=text)

    html = owner.get(response["Location"]).content.decode()
    assert "at most 50 characters" in html
    assert CANARY_EMAIL not in html
    assert conversation.messages.count() == 1


def test_the_composer_shows_its_label_and_the_limit(
    owner: Client, conversation: Conversation
) -> None:
    html = page(owner, conversation)

    assert '<label for="id_text">Your message</label>' in html
    assert 'maxlength="2000"' in html
    assert "At most 2000 characters" in html


def test_new_messages_go_into_a_polite_live_region(
    owner: Client, conversation: Conversation
) -> None:
    html = page(owner, conversation)

    assert re.search(r'id="message-list"[^>]*aria-live="polite"', html)


def test_the_page_has_no_executable_inline_script(
    owner: Client, conversation: Conversation
) -> None:
    html = page(owner, conversation)

    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts
    assert all("src=" in s or 'type="application/json"' in s for s in scripts)


def test_a_fallback_answer_says_the_ai_service_was_unavailable(
    owner: Client, conversation: Conversation
) -> None:
    Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        text="Open Health Connect and allow Samsung Health to write steps.",
        source=Message.Source.FALLBACK,
    )

    assert FALLBACK_NOTICE in page(owner, conversation)


def test_a_closed_conversation_says_a_message_continues_in_a_new_one(
    owner: Client, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(status="closed")

    html = page(owner, conversation)

    assert "Send a message to continue in a new conversation" in html
    assert 'id="composer"' in html


def test_posting_to_a_closed_conversation_continues_in_a_new_one(
    owner: Client, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(status="closed")

    response = send(owner, conversation, text=SAMSUNG)

    successor = Conversation.objects.get(continued_from=conversation)
    assert response["Location"].startswith(f"/conversations/{successor.pk}/")
    html = owner.get(response["Location"]).content.decode()
    assert f'href="/conversations/{conversation.pk}/"' in html
    assert "which ended after a period of inactivity" in html
    assert conversation.messages.count() == 1
    assert successor.messages.filter(role="user").count() == 1


def test_a_closed_conversation_with_a_successor_links_to_it(
    owner: Client, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(status="closed")
    send(owner, conversation, text=SAMSUNG)
    successor = Conversation.objects.get(continued_from=conversation)

    html = page(owner, conversation)

    assert f'href="/conversations/{successor.pk}/"' in html
    assert 'id="composer"' not in html


def test_rename_changes_the_title_shown_in_the_list(
    owner: Client, conversation: Conversation
) -> None:
    owner.post(f"/conversations/{conversation.pk}/rename/", {"title": "Galaxy steps"})

    assert "Galaxy steps" in owner.get("/conversations/").content.decode()


def test_rename_redacts_identifiers_in_the_title(
    owner: Client, conversation: Conversation
) -> None:
    owner.post(f"/conversations/{conversation.pk}/rename/", {"title": CANARY_EMAIL})

    assert CANARY_EMAIL not in owner.get("/conversations/").content.decode()


def test_delete_asks_for_confirmation_first(
    owner: Client, conversation: Conversation
) -> None:
    response = owner.get(f"/conversations/{conversation.pk}/delete/")

    assert "Delete permanently" in response.content.decode()
    assert Conversation.objects.filter(pk=conversation.pk).exists() is True


def test_delete_removes_the_conversation(
    owner: Client, conversation: Conversation
) -> None:
    owner.post(f"/conversations/{conversation.pk}/delete/")

    assert Conversation.objects.filter(pk=conversation.pk).exists() is False


def test_a_conversation_on_legal_hold_is_not_deleted(
    owner: Client, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(legal_hold=True)

    response = owner.post(f"/conversations/{conversation.pk}/delete/", follow=True)

    assert "cannot be deleted" in response.content.decode()
    assert Conversation.objects.filter(pk=conversation.pk).exists() is True


def test_download_my_data_is_a_json_attachment(
    owner: Client, conversation: Conversation
) -> None:
    send(owner, conversation, text=SAMSUNG)

    response = owner.get("/my-data/")

    assert response["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.content)
    assert [c["id"] for c in data["conversations"]] == [conversation.pk]
    assert len(data["conversations"][0]["messages"]) == 3
