"""Retention purge: what expires, what is kept, dry runs, batches and the clock guard."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.models import Conversation, LLMCall, Message
from compliance import incidents, retention
from compliance.exceptions import RetentionRefused
from compliance.models import AuditAction, AuditEvent, Incident, RetentionRun
from compliance.services import audit_retention_cutoff

NOW = dt.datetime(2026, 6, 1, 3, 15, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=91)
RECENT = NOW - dt.timedelta(days=89)


@pytest.fixture(autouse=True)
def _wall_clock_at_now() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


def conversation(
    user: object, *, when: dt.datetime, hold: bool = False
) -> Conversation:
    convo = Conversation.objects.create(
        user=user, legal_hold=hold, created_at=when, last_activity_at=when
    )
    for role in ("user", "assistant"):
        Message.objects.create(
            conversation=convo, role=role, text="steps stopped syncing", created_at=when
        )
    LLMCall.objects.create(
        created_at=when, user_id=user.pk, conversation_id=convo.pk, outcome="ok"
    )
    return convo


@pytest.fixture
def data(patient: object) -> dict[str, Conversation]:
    return {
        "old": conversation(patient, when=OLD),
        "held": conversation(patient, when=OLD, hold=True),
        "recent": conversation(patient, when=RECENT),
    }


def surviving() -> set[int]:
    return set(Conversation.objects.values_list("pk", flat=True))


@pytest.mark.django_db
def test_expired_conversations_messages_and_llm_calls_are_deleted(data: dict) -> None:
    result = retention.purge(now=NOW)

    assert result.counts == {"messages": 2, "conversations": 1, "llm_calls": 1}
    assert not Message.objects.filter(conversation_id=data["old"].pk).exists()
    assert not LLMCall.objects.filter(conversation_id=data["old"].pk).exists()


@pytest.mark.django_db
def test_held_and_recent_conversations_are_kept_with_their_messages(
    data: dict,
) -> None:
    retention.purge(now=NOW)

    assert surviving() == {data["held"].pk, data["recent"].pk}
    assert Message.objects.count() == 4
    assert LLMCall.objects.count() == 2


@pytest.mark.django_db
def test_old_messages_of_a_recently_active_conversation_expire(patient: object) -> None:
    convo = conversation(patient, when=OLD)
    Conversation.objects.filter(pk=convo.pk).update(last_activity_at=RECENT)

    result = retention.purge(now=NOW)

    assert result.counts["messages"] == 2
    assert surviving() == {convo.pk}


@pytest.mark.django_db
def test_audit_and_incident_rows_are_untouched(data: dict) -> None:
    incidents.incident_open(
        title="Old outage", severity="low", category="other", detected_at=OLD
    )
    Incident.objects.update(created_at=NOW - dt.timedelta(days=900))
    audit_before = set(AuditEvent.objects.values_list("seq", flat=True))

    retention.purge(now=NOW)

    assert audit_before <= set(AuditEvent.objects.values_list("seq", flat=True))
    assert Incident.objects.count() == 1


@pytest.mark.django_db
def test_a_dry_run_counts_and_changes_nothing(data: dict) -> None:
    result = retention.purge(now=NOW, dry_run=True)

    assert result.counts == {"messages": 2, "conversations": 1, "llm_calls": 1}
    assert len(surviving()) == 3
    assert Message.objects.count() == 6


@pytest.mark.django_db
def test_a_second_run_deletes_nothing(data: dict) -> None:
    retention.purge(now=NOW)

    again = retention.purge(now=NOW)

    assert again.total == 0


@pytest.mark.django_db
def test_deletes_go_in_batches_of_the_given_size(patient: object) -> None:
    for _ in range(5):
        conversation(patient, when=OLD)

    with CaptureQueriesContext(connection) as queries:
        result = retention.purge(now=NOW, batch_size=2)

    deletes = [q for q in queries if q["sql"].startswith('DELETE FROM "chat_conv')]
    assert result.counts == {"messages": 10, "conversations": 5, "llm_calls": 5}
    assert len(deletes) == 3


@pytest.mark.django_db
def test_the_run_and_an_audit_event_record_the_counts(data: dict) -> None:
    result = retention.purge(now=NOW)

    run = RetentionRun.objects.get(pk=result.run_id)
    event = AuditEvent.objects.get(action=AuditAction.RETENTION_RUN)

    assert (run.outcome, run.total, run.now_used) == ("success", 4, NOW)
    assert run.counts == result.counts
    assert event.target_id == str(run.pk)
    assert (event.details["conversations"], event.details["total"]) == (1, 4)


@pytest.mark.django_db
def test_a_clock_far_ahead_of_the_last_run_is_refused(data: dict) -> None:
    retention.purge(now=NOW)

    with pytest.raises(RetentionRefused, match="clock_forward"):
        retention.purge(now=NOW + dt.timedelta(days=100))

    assert len(surviving()) == 2
    assert RetentionRun.objects.filter(outcome="refused").count() == 1


@pytest.mark.django_db
def test_a_refusal_is_audited(data: dict) -> None:
    retention.purge(now=NOW)

    with pytest.raises(RetentionRefused):
        retention.purge(now=NOW + dt.timedelta(days=100))

    event = AuditEvent.objects.filter(action=AuditAction.RETENTION_RUN).first()
    assert (event.outcome, event.details["reason"]) == ("refused", "clock_forward")


@pytest.mark.django_db
def test_a_clock_that_went_back_is_refused(data: dict) -> None:
    retention.purge(now=NOW)

    with pytest.raises(RetentionRefused, match="clock_backward"):
        retention.purge(now=NOW - dt.timedelta(hours=1))


@pytest.mark.django_db
def test_a_day_after_the_last_run_is_accepted(data: dict) -> None:
    retention.purge(now=NOW)

    result = retention.purge(now=NOW + dt.timedelta(days=1))

    assert result.total == 0


@pytest.mark.django_db
def test_force_overrides_the_clock_check(data: dict) -> None:
    retention.purge(now=NOW)

    result = retention.purge(now=NOW + dt.timedelta(days=100), force=True)

    assert result.counts["conversations"] == 1
    assert RetentionRun.objects.get(pk=result.run_id).reason == "forced"


@pytest.mark.django_db
def test_the_first_run_ever_has_no_clock_to_compare(data: dict) -> None:
    result = retention.purge(now=NOW + dt.timedelta(days=3650))

    assert result.counts["conversations"] == 2


@pytest.mark.django_db
def test_a_refused_run_does_not_move_the_baseline(data: dict) -> None:
    retention.purge(now=NOW)
    with pytest.raises(RetentionRefused):
        retention.purge(now=NOW + dt.timedelta(days=100))

    result = retention.purge(now=NOW + dt.timedelta(days=2))

    assert RetentionRun.objects.get(pk=result.run_id).outcome == "success"


def test_the_policy_covers_conversations_messages_and_llm_calls() -> None:
    labels = {rule.label for rule in retention.POLICY}

    assert labels == {"chat.Conversation", "chat.Message", "chat.LLMCall"}
    assert {rule.period_setting for rule in retention.POLICY} == {"DATA_RETENTION_DAYS"}


def test_audit_records_may_be_disposed_of_only_after_six_years() -> None:
    assert audit_retention_cutoff(now=NOW) == NOW.replace(year=2020)


def test_audit_cutoff_on_29_february_falls_back_to_28_february() -> None:
    leap = dt.datetime(2028, 2, 29, tzinfo=dt.UTC)

    assert audit_retention_cutoff(now=leap) == dt.datetime(2022, 2, 28, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_the_retention_period_comes_from_settings(data: dict, settings: object) -> None:
    settings.DATA_RETENTION_DAYS = 30

    result = retention.purge(now=NOW)

    assert result.counts["conversations"] == 2
