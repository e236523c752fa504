"""Incident services: references, de-duplication, transitions, timeline, sanitizing."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction

from compliance import incidents, text_guard
from compliance.models import AuditAction, AuditEvent, Incident, IncidentUpdate
from compliance.selectors_incidents import incidents_with_deadlines_due

CANARY_TEXT = (
    "My name is Zebulon Canarywood, SSN 123-45-6789, e-mail "
    "canary.patient@example.org, MRN MRN-CANARY-0001, born 1950-01-31, "
    "card 4111 1111 1111 1111."
)
CANARIES = (
    "Zebulon Canarywood",
    "123-45-6789",
    "canary.patient@example.org",
    "MRN-CANARY-0001",
    "1950-01-31",
    "4111 1111 1111 1111",
)


def at(year: int, month: int = 3, day: int = 10) -> dt.datetime:
    return dt.datetime(year, month, day, 12, 0, tzinfo=dt.UTC)


def open_incident(**kw: object) -> Incident:
    kw.setdefault("title", "Sync outage")
    kw.setdefault("severity", "high")
    kw.setdefault("category", "availability")
    return incidents.incident_open(**kw)


def has_canary(text: str) -> bool:
    return any(canary in text for canary in CANARIES)


@pytest.fixture
def sanitizer_swap() -> Iterator[None]:
    original = text_guard.registered()
    yield
    text_guard.register(original)


@pytest.mark.django_db
def test_references_are_numbered_per_year_of_discovery() -> None:
    first = open_incident(detected_at=at(2026))
    second = open_incident(detected_at=at(2026, 11))
    next_year = open_incident(detected_at=at(2027, 1, 1))

    assert [first.reference, second.reference, next_year.reference] == [
        "PHI-2026-001",
        "PHI-2026-002",
        "PHI-2027-001",
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_openings_get_distinct_consecutive_references() -> None:
    references: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker() -> None:
        try:
            start.wait()
            references.append(open_incident(detected_at=at(2026)).reference)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(references) == [f"PHI-2026-{n:03d}" for n in range(1, 9)]


@pytest.mark.django_db
def test_an_open_incident_with_the_same_source_key_is_returned() -> None:
    first = open_incident(source_key="alert:llm_down")

    again = open_incident(source_key="alert:llm_down", title="Another title")

    assert again.pk == first.pk
    assert Incident.objects.count() == 1


@pytest.mark.django_db
def test_a_resolved_incident_does_not_absorb_a_new_one_with_its_key() -> None:
    first = open_incident(source_key="alert:llm_down")
    incidents.incident_transition(incident=first, to_status="resolved", actor=None)

    again = open_incident(source_key="alert:llm_down")

    assert again.pk != first.pk


@pytest.mark.django_db
def test_opening_is_audited_with_ids_only() -> None:
    incident = open_incident(description=CANARY_TEXT)

    event = AuditEvent.objects.get(action=AuditAction.INCIDENT_CREATE)

    assert event.target_id == str(incident.pk)
    assert event.details["reference"] == incident.reference
    assert not has_canary(str(event.details))


@pytest.mark.django_db
def test_unknown_severity_is_refused() -> None:
    with pytest.raises(ValidationError, match="severity"):
        open_incident(severity="catastrophic")


@pytest.mark.django_db
def test_the_full_lifecycle_sets_each_timestamp() -> None:
    incident = open_incident(detected_at=at(2026))
    for status in ("investigating", "contained", "resolved", "closed"):
        incident = incidents.incident_transition(
            incident=incident, to_status=status, actor=None, at=at(2026, 4)
        )

    assert incident.status == "closed"
    assert incident.contained_at == incident.resolved_at == incident.closed_at
    assert incident.updates.count() == 5


@pytest.mark.django_db
def test_an_open_incident_cannot_jump_to_closed() -> None:
    incident = open_incident()

    with pytest.raises(ValidationError, match="not allowed"):
        incidents.incident_transition(incident=incident, to_status="closed", actor=None)


@pytest.mark.django_db
def test_a_closed_incident_cannot_change_status() -> None:
    incident = open_incident()
    for status in ("resolved", "closed"):
        incident = incidents.incident_transition(
            incident=incident, to_status=status, actor=None
        )

    with pytest.raises(ValidationError, match="not allowed"):
        incidents.incident_transition(
            incident=incident, to_status="investigating", actor=None
        )


@pytest.mark.django_db
def test_reopening_a_resolved_incident_clears_resolved_at() -> None:
    incident = open_incident()
    incident = incidents.incident_transition(
        incident=incident, to_status="resolved", actor=None
    )

    incident = incidents.incident_transition(
        incident=incident, to_status="investigating", actor=None
    )

    assert incident.resolved_at is None
    assert incident.contained_at is not None


@pytest.mark.django_db
def test_a_timeline_entry_cannot_be_saved_again() -> None:
    entry = open_incident().updates.get()
    entry.note = "rewritten"

    with pytest.raises(PermissionError, match="append-only"):
        entry.save()


@pytest.mark.django_db
def test_a_timeline_entry_cannot_be_deleted() -> None:
    entry = open_incident().updates.get()

    with pytest.raises(PermissionError, match="append-only"):
        entry.delete()


@pytest.mark.django_db
def test_timeline_entries_cannot_be_bulk_updated_or_deleted() -> None:
    open_incident()

    with pytest.raises(PermissionError, match="append-only"):
        IncidentUpdate.objects.all().update(note="x")
    with pytest.raises(PermissionError, match="append-only"):
        IncidentUpdate.objects.all().delete()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE compliance_incidentupdate SET note = 'x'",
        "DELETE FROM compliance_incidentupdate",
    ],
)
def test_the_database_refuses_to_change_timeline_rows(sql: str) -> None:
    open_incident()

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)

    assert IncidentUpdate.objects.count() == 1


@pytest.mark.django_db
def test_deleting_a_user_keeps_their_timeline_entries(patient: object) -> None:
    incident = open_incident()
    incidents.incident_add_note(incident=incident, actor=patient, note="Checked")

    patient.delete()

    assert incident.updates.last().actor_id is not None


@pytest.mark.django_db
def test_incident_text_with_canaries_is_redacted_on_save() -> None:
    incident = open_incident(title="Leak " + CANARY_TEXT, description=CANARY_TEXT)
    incidents.incident_edit(
        incident=incident,
        actor=None,
        changes={
            "root_cause": CANARY_TEXT,
            "fix_applied": CANARY_TEXT,
            "lessons_learned": CANARY_TEXT,
        },
    )
    incidents.incident_add_note(incident=incident, actor=None, note=CANARY_TEXT)

    stored = Incident.objects.get(pk=incident.pk)
    texts = [
        stored.title,
        stored.description,
        stored.root_cause,
        stored.fix_applied,
        stored.lessons_learned,
        *stored.updates.values_list("note", flat=True),
    ]

    assert not any(has_canary(text) for text in texts)
    assert "[SSN]" in stored.description


@pytest.mark.django_db
def test_a_status_change_note_is_redacted_too() -> None:
    incident = open_incident()

    incidents.incident_transition(
        incident=incident, to_status="investigating", actor=None, note=CANARY_TEXT
    )

    assert not has_canary(incident.updates.last().note)


@pytest.mark.django_db
@pytest.mark.usefixtures("sanitizer_swap")
def test_a_failing_sanitizer_withholds_the_text() -> None:
    def broken(text: str) -> str:
        raise RuntimeError("detector crashed")

    text_guard.register(broken)

    incident = open_incident(description=CANARY_TEXT)

    assert incident.description == text_guard.UNAVAILABLE_TEXT
    assert Incident.objects.get(pk=incident.pk).title == text_guard.UNAVAILABLE_TEXT


@pytest.mark.usefixtures("sanitizer_swap")
def test_no_registered_sanitizer_withholds_the_text() -> None:
    text_guard.register(None)

    assert text_guard.guard(CANARY_TEXT) == text_guard.UNAVAILABLE_TEXT


def test_the_chat_sanitizer_is_registered_at_startup() -> None:
    assert text_guard.guard("SSN 123-45-6789") == "SSN [SSN]"


@pytest.mark.django_db
def test_incident_labels_hold_no_text() -> None:
    incident = open_incident(title=CANARY_TEXT)

    assert str(incident) == f"Incident {incident.reference}"
    assert str(incident.updates.get()).startswith("Incident update #")


@pytest.mark.django_db
def test_per_state_counts_cannot_exceed_the_individuals_affected() -> None:
    incident = open_incident()

    with pytest.raises(ValidationError, match="more than"):
        incidents.incident_edit(
            incident=incident,
            actor=None,
            changes={"individuals_affected": 10, "state_counts": {"CA": 11}},
        )


@pytest.mark.django_db
def test_unknown_state_codes_are_refused() -> None:
    incident = open_incident()

    with pytest.raises(ValidationError, match="state code"):
        incidents.incident_edit(
            incident=incident,
            actor=None,
            changes={"individuals_affected": 10, "state_counts": {"XX": 1}},
        )


@pytest.mark.django_db
def test_an_edit_records_changed_field_names_in_the_timeline() -> None:
    incident = open_incident()

    incidents.incident_edit(
        incident=incident, actor=None, changes={"root_cause": "Expired token"}
    )

    assert incident.updates.last().note == "Report fields changed: root_cause."


@pytest.mark.django_db
def test_overdue_and_upcoming_deadlines_are_selected_for_alerts() -> None:
    breach = open_incident(detected_at=at(2026, 1, 1))
    incidents.incident_edit(
        incident=breach,
        actor=None,
        changes={"is_breach": True, "individuals_affected": 600},
    )

    due = incidents_with_deadlines_due(within_days=7, now=at(2026, 3, 5))

    assert [(d.reference, d.kind, d.overdue) for d in due] == [
        ("PHI-2026-001", "hhs", True),
        ("PHI-2026-001", "individuals", True),
    ]


@pytest.mark.django_db
def test_a_met_deadline_is_not_selected() -> None:
    breach = open_incident(detected_at=at(2026, 1, 1))
    incidents.incident_edit(
        incident=breach,
        actor=None,
        changes={
            "is_breach": True,
            "individuals_affected": 20,
            "individuals_notified_at": at(2026, 2, 1),
        },
    )

    due = incidents_with_deadlines_due(within_days=30, now=at(2026, 2, 25))

    assert due == []
