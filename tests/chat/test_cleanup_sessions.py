from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from chat.models import Conversation
from chat.services import conversation_start, sessions_cleanup
from tests.chat.conftest import audit_rows

pytestmark = pytest.mark.django_db


def make_idle(patient: Any, hours: float) -> Conversation:
    conversation = conversation_start(user=patient)
    Conversation.objects.filter(pk=conversation.pk).update(
        last_activity_at=timezone.now() - timedelta(hours=hours)
    )
    return conversation


def test_cleanup_closes_only_conversations_idle_past_the_timeout(
    patient: Any, settings: Any
) -> None:
    settings.SESSION_TIMEOUT_HOURS = 24
    idle = make_idle(patient, 25)
    recent = make_idle(patient, 23)

    closed = sessions_cleanup(now=timezone.now())

    idle.refresh_from_db()
    recent.refresh_from_db()
    assert closed == 1
    assert idle.status == "closed"
    assert idle.closed_at is not None
    assert recent.status == "active"


def test_cleanup_is_idempotent(patient: Any, settings: Any) -> None:
    settings.SESSION_TIMEOUT_HOURS = 24
    make_idle(patient, 30)
    now = timezone.now()

    first = sessions_cleanup(now=now)
    second = sessions_cleanup(now=now)

    assert (first, second) == (1, 0)


def test_cleanup_works_through_several_batches(patient: Any, settings: Any) -> None:
    settings.SESSION_TIMEOUT_HOURS = 1
    for _ in range(7):
        make_idle(patient, 2)

    closed = sessions_cleanup(now=timezone.now(), batch_size=3)

    assert closed == 7
    assert Conversation.objects.filter(status="active").count() == 0


def test_cleanup_is_audited_with_the_count_under_a_system_principal(
    patient: Any, settings: Any
) -> None:
    settings.SESSION_TIMEOUT_HOURS = 1
    make_idle(patient, 2)

    sessions_cleanup(now=timezone.now())

    (event,) = audit_rows("CONVERSATION_CLOSE")
    assert event.system_principal == "job:cleanup_sessions"
    assert event.actor_id is None
    assert event.details == {"count": 1}


def test_command_prints_a_one_line_summary(patient: Any, settings: Any) -> None:
    settings.SESSION_TIMEOUT_HOURS = 1
    make_idle(patient, 2)
    out = StringIO()

    call_command("cleanup_sessions", stdout=out)

    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("cleanup_sessions now=")
    assert lines[0].endswith("closed=1")


def test_command_accepts_an_iso_now(patient: Any, settings: Any) -> None:
    settings.SESSION_TIMEOUT_HOURS = 24
    make_idle(patient, 1)
    later = (timezone.now() + timedelta(days=2)).isoformat()
    out = StringIO()

    call_command("cleanup_sessions", "--now", later, stdout=out)
    call_command("cleanup_sessions", "--now", later, stdout=out)

    assert out.getvalue().splitlines()[0].endswith("closed=1")
    assert out.getvalue().splitlines()[1].endswith("closed=0")


def test_command_reads_a_now_without_offset_as_utc() -> None:
    out = StringIO()

    call_command("cleanup_sessions", "--now", "2026-03-01T12:00:00", stdout=out)

    assert out.getvalue().startswith("cleanup_sessions now=2026-03-01T12:00:00+00:00 ")


def test_command_rejects_a_bad_now() -> None:
    with pytest.raises(CommandError):
        call_command("cleanup_sessions", "--now", "yesterday")


def test_a_message_landing_between_selection_and_update_keeps_its_conversation_open(
    patient: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import transaction

    from chat import services_conversations

    settings.SESSION_TIMEOUT_HOURS = 1
    conversation = make_idle(patient, 2)

    class ActivityArrives:
        @staticmethod
        def atomic() -> Any:
            Conversation.objects.filter(pk=conversation.pk).update(
                last_activity_at=timezone.now()
            )
            return transaction.atomic()

    monkeypatch.setattr(services_conversations, "transaction", ActivityArrives)

    closed = sessions_cleanup(now=timezone.now())

    conversation.refresh_from_db()
    assert closed == 0
    assert conversation.status == "active"
