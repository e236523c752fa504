"""Legal holds: set only with the permission and a listed reason, audited, honoured."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError

from chat.exceptions import ConversationOnHold
from chat.models import Conversation, Message
from chat.services_conversations import (
    conversation_delete,
    conversation_legal_hold_set,
)
from compliance import incidents, retention
from compliance.models import AuditAction, AuditEvent
from compliance.roles import roles_setup
from tests.factories import make_user

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 6, 1, 3, 15, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=120)


@pytest.fixture
def custodian(db: None) -> Any:
    user = make_user(username="hold_custodian", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="set_legal_hold"))
    return type(user).objects.get(pk=user.pk)


def old_conversation(user: Any) -> Conversation:
    convo = Conversation.objects.create(user=user, created_at=OLD, last_activity_at=OLD)
    Message.objects.create(
        conversation=convo, role="user", text="steps stopped", created_at=OLD
    )
    return convo


def hold_events() -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action=AuditAction.LEGAL_HOLD_CHANGE).order_by("seq")
    )


def test_the_purge_keeps_a_conversation_placed_on_hold(
    custodian: Any, patient: Any
) -> None:
    held, expired = old_conversation(patient), old_conversation(patient)

    conversation_legal_hold_set(
        conversation=held, on=True, actor=custodian, reason="litigation"
    )
    retention.purge(now=NOW)

    assert set(Conversation.objects.values_list("pk", flat=True)) == {held.pk}
    assert Message.objects.filter(conversation=held).count() == 1
    assert not Message.objects.filter(conversation_id=expired.pk).exists()


def test_a_released_conversation_expires_again(custodian: Any, patient: Any) -> None:
    convo = old_conversation(patient)
    conversation_legal_hold_set(
        conversation=convo, on=True, actor=custodian, reason="litigation"
    )

    conversation_legal_hold_set(
        conversation=convo, on=False, actor=custodian, reason="matter_closed"
    )
    retention.purge(now=NOW)

    assert Conversation.objects.filter(pk=convo.pk).exists() is False


def test_each_change_is_audited_once_with_codes_only(
    custodian: Any, patient: Any
) -> None:
    convo = old_conversation(patient)

    first = conversation_legal_hold_set(
        conversation=convo, on=True, actor=custodian, reason="litigation"
    )
    again = conversation_legal_hold_set(
        conversation=convo, on=True, actor=custodian, reason="litigation"
    )

    (event,) = hold_events()
    assert (first, again) == (True, False)
    assert (event.actor_id, event.target_type, event.target_id) == (
        custodian.pk,
        "conversation",
        str(convo.pk),
    )
    assert event.details == {"on": True, "reason": "litigation"}


def test_an_incident_reference_is_recorded_by_reference_and_id(
    custodian: Any, patient: Any
) -> None:
    incident = incidents.incident_open(
        actor=custodian,
        title="Export job wrote to the wrong bucket",
        severity="high",
        category="privacy",
        description="Checking scope.",
        detected_at=NOW,
    )

    conversation_legal_hold_set(
        conversation=old_conversation(patient),
        on=True,
        actor=custodian,
        reason="incident_investigation",
        incident_reference=incident.reference.lower(),
    )

    (event,) = hold_events()
    assert event.details["incident"] == incident.reference
    assert event.details["incident_id"] == incident.pk


def test_a_staff_member_without_the_permission_is_refused(
    staff_member: Any, patient: Any
) -> None:
    convo = old_conversation(patient)

    with pytest.raises(PermissionDenied):
        conversation_legal_hold_set(
            conversation=convo, on=True, actor=staff_member, reason="litigation"
        )

    convo.refresh_from_db()
    assert convo.legal_hold is False
    assert hold_events() == []


def test_compliance_officers_do_not_get_the_permission_from_their_group(
    compliance_officer: Any,
) -> None:
    group = roles_setup()

    assert "set_legal_hold" not in set(
        group.permissions.values_list("codename", flat=True)
    )
    assert compliance_officer.has_perm("compliance.set_legal_hold") is False


def test_a_free_text_reason_is_refused_without_echoing_it(
    custodian: Any, patient: Any
) -> None:
    convo = old_conversation(patient)

    with pytest.raises(ValidationError) as error:
        conversation_legal_hold_set(
            conversation=convo,
            on=True,
            actor=custodian,
            reason="Subpoena re Zebulon Canarywood",
        )

    assert "Zebulon" not in str(error.value)
    assert hold_events() == []


def test_a_held_conversation_cannot_be_deleted_by_its_owner(
    custodian: Any, patient: Any
) -> None:
    convo = old_conversation(patient)
    conversation_legal_hold_set(
        conversation=convo, on=True, actor=custodian, reason="regulator_request"
    )

    with pytest.raises(ConversationOnHold):
        conversation_delete(user=patient, conversation=convo)

    assert Conversation.objects.filter(pk=convo.pk).exists() is True
