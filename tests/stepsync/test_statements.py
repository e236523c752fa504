"""Prepared statements store and read rows exactly as the ORM does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import pre_save
from django.utils import timezone

from chat.models import Conversation, Message
from stepsync.db import statements

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(patient: Any) -> Conversation:
    return Conversation.objects.create(user=patient)


def new_message(conversation: Conversation, text: str, **kw: Any) -> Message:
    return Message(conversation=conversation, role="user", text=text, **kw)


def test_an_inserted_message_reads_back_through_the_orm_unchanged(
    conversation: Conversation,
) -> None:
    stored = statements.insert(
        new_message(conversation, "walking at noon", redactions={"name": 1})
    )

    loaded = Message.objects.get(pk=stored.pk)
    assert (loaded.text, loaded.redactions) == ("walking at noon", {"name": 1})
    assert loaded.created_at == stored.created_at


def test_an_inserted_instance_is_no_longer_new(conversation: Conversation) -> None:
    stored = statements.insert(new_message(conversation, "hello"))

    assert stored.pk is not None
    assert stored._state.adding is False


def test_message_text_is_stored_as_ciphertext(conversation: Conversation) -> None:
    stored = statements.insert(new_message(conversation, "canary walking text"))

    with connection.cursor() as cursor:
        cursor.execute("SELECT text FROM chat_message WHERE id = %s", [stored.pk])
        raw = cursor.fetchone()[0]
    assert "canary" not in str(raw)


def test_a_repeated_idempotency_key_raises_integrity_error(
    conversation: Conversation,
) -> None:
    statements.insert(new_message(conversation, "one", idempotency_key="k"))

    with pytest.raises(IntegrityError), transaction.atomic():
        statements.insert(new_message(conversation, "two", idempotency_key="k"))


def test_select_rows_decrypts_orders_and_limits(conversation: Conversation) -> None:
    now = timezone.now()
    for i in range(3):
        statements.insert(
            new_message(conversation, f"m{i}", created_at=now + timedelta(seconds=i))
        )

    rows = statements.select_rows(
        Message,
        ("text", "created_at"),
        [("conversation", "=", conversation.pk)],
        order_by=("-created_at",),
        limit=2,
    )

    assert rows == [
        ("m2", now + timedelta(seconds=2)),
        ("m1", now + timedelta(seconds=1)),
    ]


def test_select_one_loads_every_field_of_the_instance(
    conversation: Conversation,
) -> None:
    found = statements.select_one(Conversation, [("id", "=", conversation.pk)])

    assert found == conversation
    assert (found.state, found.legal_hold, found.created_at) == (
        conversation.state,
        False,
        conversation.created_at,
    )


def test_select_one_gives_none_when_nothing_matches(db: None) -> None:
    assert statements.select_one(Conversation, [("id", "=", 2**62)]) is None


def test_select_one_refuses_more_than_one_match(conversation: Conversation) -> None:
    Conversation.objects.create(user=conversation.user)

    with pytest.raises(Conversation.MultipleObjectsReturned):
        statements.select_one(Conversation, [("user", "=", conversation.user_id)])


def test_select_one_joined_loads_both_instances_as_select_related_does(
    conversation: Conversation,
) -> None:
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        found = statements.select_one_joined(
            Conversation, "user", [("id", "=", conversation.pk)]
        )
        assert found is not None
        user = found.user
    assert len(queries) == 1
    expected = Conversation.objects.select_related("user").get(pk=conversation.pk)
    assert (found, found.created_at, found.state) == (
        expected,
        expected.created_at,
        expected.state,
    )
    assert (user.pk, user.username, user.date_joined, user.is_active) == (
        expected.user.pk,
        expected.user.username,
        expected.user.date_joined,
        expected.user.is_active,
    )


def test_select_one_joined_gives_none_when_nothing_matches(db: None) -> None:
    where = [("id", "=", 2**62)]
    assert statements.select_one_joined(Conversation, "user", where) is None


def test_select_one_joined_refuses_more_than_one_match(
    conversation: Conversation,
) -> None:
    Conversation.objects.create(user=conversation.user)
    where = [("user", "=", conversation.user_id)]

    with pytest.raises(Conversation.MultipleObjectsReturned):
        statements.select_one_joined(Conversation, "user", where)


def test_select_one_joined_refuses_a_nullable_relation(db: None) -> None:
    with pytest.raises(ValueError, match="not a required relation"):
        statements.select_one_joined(Conversation, "continued_from", [])


def test_select_one_joined_refuses_a_relation_to_its_own_table(
    monkeypatch: pytest.MonkeyPatch, db: None
) -> None:
    field = Conversation._meta.get_field("continued_from")
    monkeypatch.setattr(field, "null", False)

    with pytest.raises(ValueError, match="joins its own table"):
        statements.select_one_joined(Conversation, "continued_from", [])


def test_update_changes_only_matching_rows_and_counts_them(
    conversation: Conversation,
) -> None:
    later = timezone.now() + timedelta(hours=1)

    changed = statements.update(
        Conversation,
        {"state": {"step": "x"}, "last_activity_at": later},
        [("id", "=", conversation.pk), ("status", "=", "active")],
    )
    missed = statements.update(
        Conversation,
        {"state": {}},
        [("id", "=", conversation.pk), ("status", "=", "closed")],
    )

    conversation.refresh_from_db()
    assert (changed, missed) == (1, 0)
    assert (conversation.state, conversation.last_activity_at) == ({"step": "x"}, later)


def test_a_datetime_condition_compares_like_the_orm(conversation: Conversation) -> None:
    cutoff = conversation.last_activity_at + timedelta(microseconds=1)

    rows = statements.select_rows(
        Conversation, ("id",), [("last_activity_at", ">=", cutoff)]
    )

    assert rows == list(
        Conversation.objects.filter(last_activity_at__gte=cutoff).values_list("id")
    )


def test_an_unknown_operator_is_refused(db: None) -> None:
    with pytest.raises(ValueError, match="operator"):
        statements.select_rows(Conversation, ("id",), [("id", "LIKE", 1)])


def test_a_comparison_with_none_is_refused(db: None) -> None:
    with pytest.raises(ValueError, match="None"):
        statements.select_rows(Conversation, ("id",), [("closed_at", "=", None)])


def test_a_relation_that_is_not_a_column_is_refused(db: None) -> None:
    with pytest.raises(ValueError, match="not a column"):
        statements.select_rows(Conversation, ("messages",), [])


def test_a_model_with_save_receivers_is_saved_through_the_orm(
    conversation: Conversation,
) -> None:
    seen: list[Any] = []

    def receiver(sender: Any, instance: Message, **kw: Any) -> None:
        seen.append(instance.text)

    pre_save.connect(receiver, sender=Message, dispatch_uid="test-statements")
    try:
        statements.insert(new_message(conversation, "signalled"))
    finally:
        pre_save.disconnect(dispatch_uid="test-statements", sender=Message)

    assert seen == ["signalled"]
