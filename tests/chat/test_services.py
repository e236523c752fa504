from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from chat import assistant
from chat.exceptions import (
    ConversationOnHold,
    MessageInProgress,
    MessageInvalid,
    PHIBlocked,
)
from chat.limits import RateLimited
from chat.models import Conversation, Message
from chat.services import (
    TITLE_MAX_CHARS,
    conversation_context,
    conversation_delete,
    conversation_export_for_user,
    conversation_rename,
    conversation_start,
    message_send,
)
from tests.chat.conftest import audit_rows
from tests.phi_tripwire import find_canary

pytestmark = pytest.mark.django_db

SSN = "123-45-6789"
EMAIL = "canary.patient@example.org"


def test_a_new_conversation_starts_with_the_assistant_welcome(patient: Any) -> None:
    conversation = conversation_start(user=patient)

    messages = list(conversation.messages.all())
    assert len(messages) == 1
    assert messages[0].role == "assistant"
    assert messages[0].source == "rules"
    assert messages[0].text == assistant.welcome().text
    assert messages[0].quick_replies
    assert conversation.status == "active"
    assert len(audit_rows("CONVERSATION_CREATE", target_id=str(conversation.pk))) == 1


def test_a_conversation_whose_audit_row_fails_is_not_created(
    patient: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_audit(**_: Any) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr("chat.services_conversations.audit_record", failing_audit)

    with pytest.raises(RuntimeError):
        conversation_start(user=patient)

    assert not Conversation.objects.filter(user=patient).exists()
    assert not Message.objects.filter(conversation__user=patient).exists()


def test_a_title_is_sanitized_and_capped(patient: Any) -> None:
    conversation = conversation_start(user=patient, title=f"mail {EMAIL} " + "x" * 200)

    conversation.refresh_from_db()
    assert EMAIL not in conversation.title
    assert "[EMAIL]" in conversation.title
    assert len(conversation.title) <= TITLE_MAX_CHARS


def test_rename_stores_a_sanitized_title_and_audits(
    patient: Any, conversation: Conversation
) -> None:
    conversation_rename(user=patient, conversation=conversation, title=f"SSN {SSN}")

    conversation.refresh_from_db()
    assert SSN not in conversation.title
    assert len(audit_rows("CONVERSATION_RENAME", target_id=str(conversation.pk))) == 1


def test_delete_removes_messages_and_audits(
    patient: Any, conversation: Conversation
) -> None:
    pk = conversation.pk
    message_send(user=patient, conversation=conversation, text="steps not syncing")

    conversation_delete(user=patient, conversation=conversation)

    assert not Conversation.objects.filter(pk=pk).exists()
    assert not Message.objects.filter(conversation_id=pk).exists()
    assert audit_rows("CONVERSATION_DELETE", target_id=str(pk))[0].details == {
        "messages": 3
    }


def test_delete_is_refused_under_legal_hold(
    patient: Any, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(legal_hold=True)
    conversation.refresh_from_db()

    with pytest.raises(ConversationOnHold):
        conversation_delete(user=patient, conversation=conversation)

    assert Conversation.objects.filter(pk=conversation.pk).exists()


def test_a_message_is_stored_sanitized_with_redaction_counts(
    patient: Any, conversation: Conversation
) -> None:
    outcome = message_send(
        user=patient,
        conversation=conversation,
        text=f"my steps stopped syncing, reach me at {EMAIL}",
    )

    stored = Message.objects.get(pk=outcome.user_message.pk)
    assert EMAIL not in stored.text
    assert "[EMAIL]" in stored.text
    assert stored.redactions == {"EMAIL": 1}
    assert outcome.notice == "We removed 1 e-mail address before saving your message"
    assert outcome.reply.role == "assistant"
    assert outcome.reply.source == "rules"
    assert outcome.reply.in_reply_to_id == stored.pk


def test_a_message_is_audited_with_counts_never_content(
    patient: Any, conversation: Conversation
) -> None:
    message_send(
        user=patient, conversation=conversation, text=f"fitbit not syncing {EMAIL}"
    )

    (event,) = audit_rows("MESSAGE_SENT", target_id=str(conversation.pk))
    assert event.actor_id == patient.pk
    assert event.details["redactions"] == 1
    assert event.details["redacted_email"] == 1
    assert event.details["redaction_types"] == ["EMAIL"]
    assert event.details["source"] == "rules"
    assert find_canary(str(event.details)) is False
    assert "fitbit" not in str(event.details)


def test_a_reply_updates_the_assistant_state_and_activity(
    patient: Any, conversation: Conversation
) -> None:
    before = conversation.last_activity_at

    outcome = message_send(
        user=patient, conversation=conversation, quick_reply="platform_android"
    )

    conversation.refresh_from_db()
    assert conversation.state.get("platform") == "android"
    assert conversation.last_activity_at >= before
    assert outcome.reply.quick_replies == [
        {"label": q.label, "value": q.value}
        for q in assistant.respond(
            state={}, quick_reply="platform_android"
        ).quick_replies
    ]


def test_a_quick_reply_is_stored_as_the_button_label_and_routed_by_value(
    patient: Any, conversation: Conversation
) -> None:
    welcome = conversation.messages.get()
    button = welcome.quick_replies[0]

    outcome = message_send(
        user=patient, conversation=conversation, quick_reply=button["value"]
    )

    expected = assistant.respond(state={}, quick_reply=button["value"])
    assert outcome.user_message.text == button["label"]
    assert outcome.reply.text == expected.text


def test_quick_reply_text_that_looks_like_a_value_is_treated_as_text(
    patient: Any, conversation: Conversation
) -> None:
    outcome = message_send(
        user=patient, conversation=conversation, text="platform_android"
    )

    assert outcome.user_message.text == "platform_android"
    assert outcome.reply.source == "rules"


def test_an_unknown_quick_reply_value_is_rejected(
    patient: Any, conversation: Conversation
) -> None:
    with pytest.raises(MessageInvalid) as caught:
        message_send(user=patient, conversation=conversation, quick_reply="rm -rf")

    assert caught.value.reason == "unknown_quick_reply"
    assert conversation.messages.count() == 1


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({}, "one_of"),
        ({"text": "hi", "quick_reply": "platform_ios"}, "one_of"),
        ({"text": ""}, "empty"),
        ({"text": " \n\t "}, "empty"),
        ({"text": "a\x00b"}, "nul"),
        ({"text": "\ud800"}, "encoding"),
        ({"text": 123}, "type"),
    ],
)
def test_invalid_message_input_is_rejected_and_nothing_stored(
    patient: Any, conversation: Conversation, kwargs: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MessageInvalid) as caught:
        message_send(user=patient, conversation=conversation, **kwargs)

    assert caught.value.reason == reason
    assert conversation.messages.count() == 1


def test_a_message_of_exactly_the_maximum_length_is_accepted(
    patient: Any, conversation: Conversation, settings: Any
) -> None:
    settings.MAX_MESSAGE_CHARS = 50

    outcome = message_send(user=patient, conversation=conversation, text="s" * 50)

    assert len(outcome.user_message.text) == 50


def test_a_message_over_the_maximum_length_is_rejected(
    patient: Any, conversation: Conversation, settings: Any
) -> None:
    settings.MAX_MESSAGE_CHARS = 50

    with pytest.raises(MessageInvalid) as caught:
        message_send(user=patient, conversation=conversation, text="s" * 51)

    assert caught.value.reason == "too_long"


def test_control_characters_are_removed_before_storing(
    patient: Any, conversation: Conversation
) -> None:
    text = "steps\r\nnot \x1b[31msyncing\x1b[0m \u202eevil\u202c\x07 ok"

    outcome = message_send(user=patient, conversation=conversation, text=text)

    assert outcome.user_message.text == "steps\nnot syncing evil ok"


def test_strict_mode_blocks_critical_identifiers_and_stores_nothing(
    patient: Any, conversation: Conversation, settings: Any
) -> None:
    settings.PHI_SANITIZER_STRICT_MODE = True

    with pytest.raises(PHIBlocked) as caught:
        message_send(user=patient, conversation=conversation, text=f"my ssn {SSN}")

    assert caught.value.types == ("SSN",)
    assert find_canary(str(caught.value)) is False
    assert find_canary(repr(caught.value.payload())) is False
    assert conversation.messages.count() == 1
    (event,) = audit_rows("MESSAGE_BLOCKED", target_id=str(conversation.pk))
    assert event.details["types"] == ["SSN"]
    assert event.outcome == "blocked"


def test_a_sanitizer_failure_blocks_the_message(
    patient: Any, conversation: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat import phi_patterns

    def broken(text: str) -> list[Any]:
        raise RuntimeError("detector failed")

    monkeypatch.setattr(phi_patterns, "detect", broken)

    with pytest.raises(PHIBlocked) as caught:
        message_send(user=patient, conversation=conversation, text="steps missing")

    assert caught.value.types == ("SANITIZER_ERROR",)
    assert conversation.messages.count() == 1


def test_a_message_to_a_closed_conversation_starts_its_successor(
    patient: Any, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(status="closed")
    conversation.refresh_from_db()

    outcome = message_send(user=patient, conversation=conversation, text="hello")

    successor = Conversation.objects.get(pk=outcome.conversation_id)
    assert successor.continued_from_id == conversation.pk
    assert successor.user_id == patient.pk
    assert successor.status == "active"
    assert outcome.user_message.conversation_id == successor.pk
    assert conversation.messages.count() == 1


def test_a_conversation_closes_after_the_session_timeout_and_continues_in_a_new_one(
    patient: Any, settings: Any
) -> None:
    settings.SESSION_TIMEOUT_HOURS = 2
    conversation = conversation_start(user=patient)

    later = timezone.now() + timedelta(hours=3)
    with time_machine.travel(later):
        outcome = message_send(
            user=patient, conversation=conversation, text="still there?"
        )

    conversation.refresh_from_db()
    assert conversation.status == "closed"
    assert conversation.closed_at is not None
    assert conversation.messages.count() == 1
    assert outcome.conversation_id != conversation.pk
    assert Conversation.objects.get(pk=outcome.conversation_id).continued_from_id == (
        conversation.pk
    )


def test_every_turn_after_a_close_goes_to_the_same_successor(
    patient: Any, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(status="closed")
    conversation.refresh_from_db()

    first = message_send(user=patient, conversation=conversation, text="hello")
    second = message_send(user=patient, conversation=conversation, text="hi again")

    assert first.conversation_id == second.conversation_id
    assert Conversation.objects.filter(continued_from=conversation).count() == 1


def test_a_retried_key_after_a_close_returns_the_turn_stored_in_the_successor(
    patient: Any, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(status="closed")
    conversation.refresh_from_db()

    first = message_send(
        user=patient, conversation=conversation, text="hello", idempotency_key="k-1"
    )
    again = message_send(
        user=patient, conversation=conversation, text="hello", idempotency_key="k-1"
    )

    assert again.replayed is True
    assert again.user_message.pk == first.user_message.pk
    assert Message.objects.filter(role="user", conversation__user=patient).count() == 1


def test_starting_a_successor_is_audited_with_the_conversation_it_continues(
    patient: Any, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(status="closed")
    conversation.refresh_from_db()

    outcome = message_send(user=patient, conversation=conversation, text="hello")

    created = audit_rows("CONVERSATION_CREATE", target_id=str(outcome.conversation_id))
    assert [row.details for row in created] == [{"continued_from": conversation.pk}]


def test_a_conversation_stays_open_while_in_use(patient: Any, settings: Any) -> None:
    settings.SESSION_TIMEOUT_HOURS = 2
    start = timezone.now()
    conversation = conversation_start(user=patient)

    for hours in (1.5, 3, 4.5):
        with time_machine.travel(start + timedelta(hours=hours)):
            message_send(user=patient, conversation=conversation, text="garmin sync")

    conversation.refresh_from_db()
    assert conversation.status == "active"


def test_only_the_owner_can_send_to_a_conversation(
    other_patient: Any, conversation: Conversation
) -> None:
    with pytest.raises(PermissionDenied):
        message_send(user=other_patient, conversation=conversation, text="hi")


def test_a_retry_with_the_same_idempotency_key_returns_the_stored_outcome(
    patient: Any, conversation: Conversation
) -> None:
    first = message_send(
        user=patient,
        conversation=conversation,
        text="wrong count",
        idempotency_key="k1",
    )

    again = message_send(
        user=patient,
        conversation=conversation,
        text="wrong count",
        idempotency_key="k1",
    )

    assert again.replayed is True
    assert again.user_message.pk == first.user_message.pk
    assert again.reply.pk == first.reply.pk
    assert conversation.messages.count() == 3
    assert len(audit_rows("MESSAGE_SENT")) == 1


def test_a_retry_is_answered_even_when_the_message_limit_is_reached(
    patient: Any, conversation: Conversation, settings: Any
) -> None:
    settings.RATE_LIMIT_MESSAGES_PER_MINUTE = 1
    first = message_send(
        user=patient, conversation=conversation, text="hi", idempotency_key="k9"
    )

    again = message_send(
        user=patient, conversation=conversation, text="hi", idempotency_key="k9"
    )

    assert again.replayed is True
    assert again.reply.pk == first.reply.pk


def test_a_message_over_the_limit_is_not_stored(
    patient: Any, conversation: Conversation, settings: Any
) -> None:
    settings.RATE_LIMIT_MESSAGES_PER_MINUTE = 1
    message_send(user=patient, conversation=conversation, text="hi")

    with pytest.raises(RateLimited):
        message_send(user=patient, conversation=conversation, text="hello again")

    assert conversation.messages.filter(role="user").count() == 1


def test_the_raw_idempotency_key_is_not_stored(
    patient: Any, conversation: Conversation
) -> None:
    outcome = message_send(
        user=patient, conversation=conversation, text="hi", idempotency_key="abc-123"
    )

    assert outcome.user_message.idempotency_key != "abc-123"
    assert len(outcome.user_message.idempotency_key or "") == 64


def test_context_holds_the_last_messages_oldest_first(
    patient: Any, conversation: Conversation, settings: Any
) -> None:
    settings.MAX_MESSAGES_PER_SESSION = 4
    for text in ("one", "two", "three"):
        message_send(user=patient, conversation=conversation, text=f"fitbit {text}")

    context = conversation_context(conversation=conversation)

    assert len(context) == 4
    assert [item["role"] for item in context] == ["user", "assistant"] * 2
    assert context[0]["content"] == "fitbit two"
    assert context[2]["content"] == "fitbit three"


def test_context_skips_incomplete_replies(
    patient: Any, conversation: Conversation
) -> None:
    Message.objects.create(
        conversation=conversation, role="assistant", text="half", status="incomplete"
    )

    context = conversation_context(conversation=conversation)

    assert [item["content"] for item in context] == [assistant.welcome().text]


def test_export_holds_only_the_users_own_data(
    patient: Any, other_patient: Any, conversation: Conversation
) -> None:
    message_send(user=patient, conversation=conversation, text=f"help {EMAIL}")
    theirs = conversation_start(user=other_patient)
    message_send(user=other_patient, conversation=theirs, text="their secret words")

    data = conversation_export_for_user(user=patient)

    assert data["account"]["id"] == patient.pk
    assert data["account"]["username"] == "patient"
    assert [c["id"] for c in data["conversations"]] == [conversation.pk]
    texts = [m["text"] for c in data["conversations"] for m in c["messages"]]
    assert len(texts) == 3
    assert "their secret words" not in str(data)
    assert EMAIL not in str(data)
    user_message = data["conversations"][0]["messages"][1]
    assert user_message["redactions"] == {"EMAIL": 1}
    assert user_message["created_at"]
    assert data["conversations"][0]["messages"][2]["source"] == "rules"
    (event,) = audit_rows("CONVERSATION_EXPORT", actor=patient)
    assert event.details == {"conversations": 1, "messages": 3}


def test_export_of_one_conversation_holds_only_that_conversation(
    patient: Any, conversation: Conversation
) -> None:
    conversation_start(user=patient)

    data = conversation_export_for_user(user=patient, conversation=conversation)

    assert [c["id"] for c in data["conversations"]] == [conversation.pk]


def test_a_retry_while_the_first_request_is_answering_is_told_to_wait(
    patient: Any, conversation: Conversation
) -> None:
    from chat.services import idempotency_digest

    Message.objects.create(
        conversation=conversation,
        role="user",
        text="fitbit",
        idempotency_key=idempotency_digest("k2"),
    )

    with pytest.raises(MessageInProgress):
        message_send(
            user=patient, conversation=conversation, text="fitbit", idempotency_key="k2"
        )

    assert conversation.messages.count() == 2


def test_a_retry_of_a_turn_whose_answer_was_lost_gets_a_fallback_reply(
    patient: Any, conversation: Conversation
) -> None:
    from chat.turns import STALE_TURN_SECONDS, idempotency_digest

    stale = Message.objects.create(
        conversation=conversation,
        role="user",
        text="my garmin steps are missing",
        idempotency_key=idempotency_digest("k3"),
        created_at=timezone.now() - timedelta(seconds=STALE_TURN_SECONDS + 1),
    )

    outcome = message_send(
        user=patient, conversation=conversation, text="x", idempotency_key="k3"
    )

    assert outcome.replayed is True
    assert outcome.user_message.pk == stale.pk
    assert outcome.reply.source == "fallback"
    assert outcome.reply.in_reply_to_id == stale.pk
    assert conversation.messages.count() == 3
