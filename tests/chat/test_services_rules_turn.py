"""A turn the rules answer is stored with its reply in one write transaction."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction

from chat import assistant, limits, llm_pipeline, services
from chat.models import Conversation, Message
from chat.services import MessageOutcome, TurnStarted, message_turn_begin
from tests.chat.conftest import audit_rows

pytestmark = pytest.mark.django_db(transaction=True)

TEXT = "my steps aren't syncing"


def always(quick_reply: str | None, rules: Any) -> bool:
    return True


def never(quick_reply: str | None, rules: Any) -> bool:
    return False


@pytest.fixture
def conversation(patient: Any) -> Conversation:
    return services.conversation_start(user=patient)


def write_transactions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the outermost transactions begun on this connection."""
    begun: list[int] = []
    original = connection.set_autocommit

    def counting(autocommit: bool, *args: Any, **kw: Any) -> None:
        if not autocommit:
            begun.append(1)
        original(autocommit, *args, **kw)

    monkeypatch.setattr(connection, "set_autocommit", counting)
    return begun


def test_a_rules_answer_is_stored_with_the_turn_in_one_transaction(
    patient: Any, conversation: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    begun = write_transactions(monkeypatch)

    outcome = message_turn_begin(
        user=patient, conversation=conversation, text=TEXT, answer_from_rules=always
    )

    assert isinstance(outcome, MessageOutcome)
    assert outcome.reply.source == "rules"
    assert outcome.reply.in_reply_to_id == outcome.user_message.pk
    assert len(begun) == 1
    assert len(audit_rows("MESSAGE_SENT", target_id=str(conversation.pk))) == 1


def test_the_stored_reply_carries_the_rules_state_into_the_conversation(
    patient: Any, conversation: Conversation
) -> None:
    expected = assistant.respond(state=conversation.state, text=TEXT, quick_reply=None)

    message_turn_begin(
        user=patient, conversation=conversation, text=TEXT, answer_from_rules=always
    )

    conversation.refresh_from_db()
    assert conversation.state == dict(expected.state)


def test_a_turn_left_to_the_llm_stores_no_reply(
    patient: Any, conversation: Conversation
) -> None:
    started = message_turn_begin(
        user=patient, conversation=conversation, text=TEXT, answer_from_rules=never
    )

    assert isinstance(started, TurnStarted)
    assert not Message.objects.filter(in_reply_to=started.user_message).exists()


def test_a_reply_that_fails_to_store_takes_the_turn_back_with_it(
    patient: Any, conversation: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kw: Any) -> None:
        raise RuntimeError("reply store failed")

    monkeypatch.setattr(services, "message_turn_finish", broken)
    before = Message.objects.filter(conversation=conversation).count()

    with pytest.raises(RuntimeError):
        message_turn_begin(
            user=patient, conversation=conversation, text=TEXT, answer_from_rules=always
        )

    assert Message.objects.filter(conversation=conversation).count() == before


def test_a_turn_for_the_llm_takes_its_limit_slot_in_the_turns_transaction(
    patient: Any, conversation: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    begun = write_transactions(monkeypatch)

    started = message_turn_begin(
        user=patient,
        conversation=conversation,
        text=TEXT,
        answer_from_rules=never,
        reserve=lambda: llm_pipeline.llm_reserve(user_id=patient.pk),
    )

    assert isinstance(started, TurnStarted)
    assert isinstance(started.reserved, limits.LLMSlot)
    assert len(begun) == 1


def test_a_turn_the_rules_answer_reserves_no_slot(
    patient: Any, conversation: Conversation
) -> None:
    reserved: list[int] = []

    outcome = message_turn_begin(
        user=patient,
        conversation=conversation,
        text=TEXT,
        answer_from_rules=always,
        reserve=lambda: reserved.append(1),
    )

    assert isinstance(outcome, MessageOutcome)
    assert reserved == []


def test_a_slot_taken_in_a_transaction_that_rolls_back_is_not_spent(
    patient: Any, settings: Any
) -> None:
    settings.LLM_MAX_CONCURRENT_PER_USER = 1

    def turn_that_fails_to_commit() -> None:
        with transaction.atomic():
            llm_pipeline.llm_reserve(user_id=patient.pk)
            raise RuntimeError("the turn failed to commit")

    with pytest.raises(RuntimeError):
        turn_that_fails_to_commit()

    assert isinstance(llm_pipeline.llm_reserve(user_id=patient.pk), limits.LLMSlot)
    assert llm_pipeline.llm_reserve(user_id=patient.pk) == "rate_limited"
