from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat.models import Conversation
from chat.selectors import (
    conversation_get_for_user,
    conversation_list_for_user,
    session_stats,
)
from chat.services import conversation_start
from tests.chat.conftest import audit_rows

pytestmark = pytest.mark.django_db


def test_the_owner_gets_their_conversation(
    patient: Any, conversation: Conversation
) -> None:
    assert conversation_get_for_user(user=patient, pk=conversation.pk) == conversation
    assert conversation_get_for_user(user=patient, pk=str(conversation.pk)) == (
        conversation
    )


def test_another_user_gets_404_and_the_attempt_is_audited(
    other_patient: Any, conversation: Conversation
) -> None:
    with pytest.raises(Http404):
        conversation_get_for_user(user=other_patient, pk=conversation.pk)

    (event,) = audit_rows("ACCESS_DENIED")
    assert event.actor_id == other_patient.pk
    assert event.target_type == "conversation"
    assert event.target_id == str(conversation.pk)
    assert event.outcome == "denied"


@pytest.mark.parametrize(
    "pk", [0, -1, 2**63, 2**64, "abc", "1.0", "", None, True, "١٢", 999_999]
)
def test_impossible_or_missing_ids_give_404_without_an_audit_row(
    patient: Any, conversation: Conversation, pk: Any
) -> None:
    with pytest.raises(Http404):
        conversation_get_for_user(user=patient, pk=pk)

    assert audit_rows("ACCESS_DENIED") == []


def test_the_list_holds_own_conversations_newest_activity_first(
    patient: Any, other_patient: Any
) -> None:
    older = conversation_start(user=patient)
    newer = conversation_start(user=patient)
    conversation_start(user=other_patient)
    Conversation.objects.filter(pk=older.pk).update(
        last_activity_at=timezone.now() - timedelta(hours=1)
    )

    assert list(conversation_list_for_user(user=patient)) == [newer, older]


def test_session_stats_count_active_sessions_and_capacity(
    patient: Any, settings: Any
) -> None:
    settings.MAX_ACTIVE_SESSIONS = 5
    settings.SESSION_TIMEOUT_HOURS = 24
    for _ in range(4):
        conversation_start(user=patient)
    expired = conversation_start(user=patient)
    Conversation.objects.filter(pk=expired.pk).update(
        last_activity_at=timezone.now() - timedelta(hours=30)
    )
    closed = conversation_start(user=patient)
    Conversation.objects.filter(pk=closed.pk).update(status="closed")

    stats = session_stats()

    assert stats.active_sessions == 4
    assert stats.total_messages == 6
    assert stats.max_active_sessions == 5
    assert stats.capacity_used_pct == 80.0
    assert stats.approaching_capacity is True


def test_session_stats_below_80_percent_is_not_approaching(
    patient: Any, settings: Any
) -> None:
    settings.MAX_ACTIVE_SESSIONS = 10
    conversation_start(user=patient)

    stats = session_stats()

    assert stats.capacity_used_pct == 10.0
    assert stats.approaching_capacity is False


def test_session_stats_use_two_count_queries(patient: Any) -> None:
    conversation_start(user=patient)

    with CaptureQueriesContext(connection) as queries:
        session_stats(now=timezone.now())

    assert len(queries) == 2
    assert all("COUNT" in q["sql"].upper() for q in queries.captured_queries)
