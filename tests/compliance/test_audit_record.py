"""audit_record: who, what, where, and details limited to ids, types and counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from compliance.exceptions import AuditDetailsRejected
from compliance.models import AuditAction, AuditEvent
from compliance.services import audit_record, details_validate, pseudonym
from tests.phi_tripwire import CANARIES

pytestmark = pytest.mark.django_db


def test_the_request_gives_the_client_ip_and_request_id(patient: Any) -> None:
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.9")
    request.request_id = "abc123def456"

    event = audit_record(action=AuditAction.LOGIN, actor=patient, request=request)

    assert (event.actor_id, event.client_ip, event.request_id) == (
        patient.pk,
        "203.0.113.9",
        "abc123def456",
    )


def test_a_forged_forwarded_for_header_is_not_the_client_ip(patient: Any) -> None:
    request = RequestFactory().get(
        "/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.1"
    )

    event = audit_record(action=AuditAction.LOGIN, actor=patient, request=request)

    assert event.client_ip == "203.0.113.9"


def test_an_anonymous_actor_is_recorded_as_none() -> None:
    from django.contrib.auth.models import AnonymousUser

    event = audit_record(action=AuditAction.ACCESS_DENIED, actor=AnonymousUser())

    assert event.actor_id is None


def test_ids_types_and_counts_are_accepted() -> None:
    details = {
        "types": ["EMAIL", "PHONE"],
        "redactions": {"EMAIL": 2},
        "count": 3,
        "blocked": False,
        "reference": "PHI-2026-001",
        "username_ps": pseudonym("someone"),
    }

    assert details_validate(details) == details


@pytest.mark.parametrize(
    "value",
    [
        "my ssn is in here",
        "x" * 65,
        "123-45-6789",
        "1950-01-31",
        "4111111111111111",
        "canary.patient@example.org",
        "line\nbreak",
        1.5,
        {"nested": {"deeper": 1}},
        ["two words"],
    ],
)
def test_free_text_and_identifiers_are_rejected(value: Any) -> None:
    with pytest.raises(AuditDetailsRejected):
        audit_record(action=AuditAction.JOB_RUN, details={"field": value})


def test_a_rejection_message_never_holds_the_value() -> None:
    with pytest.raises(AuditDetailsRejected) as error:
        details_validate({"note": "Zebulon Canarywood"})

    assert "Zebulon" not in str(error.value)


def test_an_identifier_shaped_target_id_is_rejected() -> None:
    with pytest.raises(AuditDetailsRejected):
        audit_record(action=AuditAction.CONVERSATION_VIEW, target_id="123-45-6789")


def test_an_unknown_action_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        audit_record(action="made_up")


def test_a_32_digit_number_is_not_taken_for_a_hex_token() -> None:
    with pytest.raises(AuditDetailsRejected, match="looks like an identifier"):
        details_validate({"username_ps": "4111111111111111" * 2})


def test_a_32_digit_target_id_is_rejected() -> None:
    with pytest.raises(AuditDetailsRejected):
        audit_record(action=AuditAction.CONVERSATION_VIEW, target_id="1" * 32)


def test_a_hex_request_id_with_letters_is_accepted() -> None:
    token = "9f1c2e3d4b5a69788796a5b4c3d2e1f0"

    assert details_validate({"request": token}) == {"request": token}


def test_pseudonyms_are_stable_keyed_and_short() -> None:
    value = pseudonym("patient")

    assert value == pseudonym("patient")
    assert value != pseudonym("Patient")
    assert len(value) == 32
    assert "patient" not in value


def test_str_of_an_event_is_a_label() -> None:
    event = audit_record(action=AuditAction.JOB_RUN)

    assert str(event) == f"Audit event #{event.seq}"


def test_no_canary_reaches_an_audit_row_through_failed_logins(client: Any) -> None:
    for canary in CANARIES:
        client.post("/admin/login/", {"username": canary, "password": canary})

    rows = list(AuditEvent.objects.values_list())
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED).count() == len(
        CANARIES
    )
    assert not any(canary in repr(rows) for canary in CANARIES)
