from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from chat.models import Conversation, Message
from tests.phi_tripwire import find_canary

pytestmark = pytest.mark.django_db

CANARY = "canary.patient@example.org"


def test_str_of_models_holds_labels_only(conversation: Conversation) -> None:
    message = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, text=CANARY
    )

    assert str(conversation) == f"Conversation #{conversation.pk}"
    assert str(message) == f"Message #{message.pk}"
    assert find_canary(str(message)) is False
    assert find_canary(repr(message)) is False


def test_message_text_is_encrypted_in_the_database(conversation: Conversation) -> None:
    message = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, text=CANARY
    )
    table = Message._meta.db_table

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT text FROM {table} WHERE id = %s", [message.pk])  # noqa: S608
        stored = cursor.fetchone()[0]

    assert CANARY not in stored
    assert stored.startswith("enc2:")
    assert Message.objects.get(pk=message.pk).text == CANARY


def test_conversation_title_is_encrypted_in_the_database(patient: Any) -> None:
    conversation = Conversation.objects.create(user=patient, title="Fitbit woes")

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT title FROM {Conversation._meta.db_table} WHERE id = %s",  # noqa: S608
            [conversation.pk],
        )
        stored = cursor.fetchone()[0]

    assert "Fitbit" not in stored


def test_idempotency_key_is_unique_within_a_conversation(
    conversation: Conversation,
) -> None:
    Message.objects.create(
        conversation=conversation, role="user", text="a", idempotency_key="k" * 64
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(
            conversation=conversation, role="user", text="b", idempotency_key="k" * 64
        )


def test_messages_without_idempotency_key_do_not_collide(
    conversation: Conversation,
) -> None:
    Message.objects.create(conversation=conversation, role="user", text="a")
    Message.objects.create(conversation=conversation, role="user", text="b")

    assert conversation.messages.filter(idempotency_key__isnull=True).count() == 3


def test_same_idempotency_key_is_allowed_in_another_conversation(
    patient: Any,
) -> None:
    first = Conversation.objects.create(user=patient)
    second = Conversation.objects.create(user=patient)

    Message.objects.create(
        conversation=first, role="user", text="a", idempotency_key="k"
    )
    Message.objects.create(
        conversation=second, role="user", text="a", idempotency_key="k"
    )

    assert Message.objects.filter(idempotency_key="k").count() == 2


def test_conversation_is_not_open_after_the_session_timeout(
    patient: Any, settings: Any
) -> None:
    settings.SESSION_TIMEOUT_HOURS = 24
    now = timezone.now()
    conversation = Conversation.objects.create(
        user=patient, last_activity_at=now - timedelta(hours=25)
    )

    assert conversation.is_open(now) is False
    assert conversation.effective_status == "closed"
    assert conversation.is_open(now - timedelta(hours=2)) is True


def test_closed_conversation_is_not_open(patient: Any) -> None:
    conversation = Conversation.objects.create(
        user=patient, status=Conversation.Status.CLOSED
    )

    assert conversation.is_open() is False
