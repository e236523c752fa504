"""A user turn leaves the conversation's activity mark to its reply unless the
mark is old: the reply moves it anyway, and each move rewrites two index pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from chat.models import Conversation
from chat.turns import TurnInput, user_turn_write

pytestmark = pytest.mark.django_db

TURN = TurnInput(text="my steps are not syncing", redactions={}, quick_reply=None)


def _active_since(conversation: Conversation, seconds: float) -> Any:
    mark = timezone.now() - timedelta(seconds=seconds)
    Conversation.objects.filter(pk=conversation.pk).update(last_activity_at=mark)
    conversation.refresh_from_db()
    return mark


def test_a_turn_in_a_recently_active_conversation_keeps_its_activity_mark(
    conversation: Conversation,
) -> None:
    mark = _active_since(conversation, 30)

    user_turn_write(conversation, TURN, key=None)

    conversation.refresh_from_db()
    assert conversation.last_activity_at == mark
    assert conversation.updated_at > mark


def test_a_turn_in_a_conversation_idle_for_minutes_moves_its_activity_mark(
    conversation: Conversation,
) -> None:
    mark = _active_since(conversation, 600)

    user_turn_write(conversation, TURN, key=None)

    conversation.refresh_from_db()
    assert conversation.last_activity_at > mark + timedelta(seconds=590)


def test_with_a_short_idle_timeout_a_tenth_of_it_is_old_enough_to_move_the_mark(
    conversation: Conversation, settings: Any
) -> None:
    settings.SESSION_TIMEOUT_HOURS = 0.01  # 36 s: a mark older than 3.6 s moves
    mark = _active_since(conversation, 10)

    user_turn_write(conversation, TURN, key=None)

    conversation.refresh_from_db()
    assert conversation.last_activity_at > mark


def test_a_turn_in_a_conversation_idle_past_the_timeout_still_goes_to_its_successor(
    conversation: Conversation, settings: Any
) -> None:
    settings.SESSION_TIMEOUT_HOURS = 1
    _active_since(conversation, 7200)

    _, holder = user_turn_write(conversation, TURN, key=None)

    assert holder.pk != conversation.pk
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.CLOSED
