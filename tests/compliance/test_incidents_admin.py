"""Incident admin: who may read, edit or append, and no PHI in pages or the report."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from compliance import incidents, roles
from compliance.models import AuditAction, AuditEvent, Incident
from tests import factories
from tests.compliance.test_incidents import CANARY_TEXT, has_canary

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_mfa(settings: Any) -> None:
    # MFA for the admin is covered by the MFA tests; here it would only add set-up.
    settings.MFA_REQUIRED_FOR_STAFF = False


@pytest.fixture
def manager(db: None) -> Any:
    return factories.make_user(
        username="incident_admin", is_staff=True, is_superuser=True
    )


@pytest.fixture
def officer(db: None) -> Any:
    user = factories.make_user(username="officer", is_staff=True)
    user.groups.add(roles.roles_setup())
    return user


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def incident() -> Incident:
    return incidents.incident_open(
        title="Fitbit sync outage",
        severity="high",
        category="availability",
        detected_at=dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC),
    )


@pytest.fixture
def canary_incident() -> Incident:
    opened = incidents.incident_open(
        title="Exposure " + CANARY_TEXT,
        severity="critical",
        category="privacy",
        description=CANARY_TEXT,
    )
    incidents.incident_edit(
        incident=opened,
        actor=None,
        changes={
            "root_cause": CANARY_TEXT,
            "fix_applied": CANARY_TEXT,
            "lessons_learned": CANARY_TEXT,
            "is_breach": True,
            "individuals_affected": 3,
        },
    )
    incidents.incident_add_note(incident=opened, actor=None, note=CANARY_TEXT)
    return opened


def change_url(incident: Incident) -> str:
    return reverse("admin:compliance_incident_change", args=[incident.pk])


def report_url(incident: Incident) -> str:
    return reverse("admin:compliance_incident_report", args=[incident.pk])


def timeline_url(incident: Incident) -> str:
    return reverse("admin:compliance_incident_timeline", args=[incident.pk])


def form_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "title": "Garmin sync outage",
        "severity": "medium",
        "category": "availability",
        "detected_at_0": "2026-03-10",
        "detected_at_1": "12:00:00",
        "description": "",
        "users_affected": "0",
        "root_cause": "",
        "fix_applied": "",
        "lessons_learned": "",
        "individuals_affected": "0",
        "state_counts": "{}",
        "updates-TOTAL_FORMS": "0",
        "updates-INITIAL_FORMS": "0",
        "updates-MIN_NUM_FORMS": "0",
        "updates-MAX_NUM_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_an_incident_manager_can_open_an_incident_from_the_add_form(
    manager: Any,
) -> None:
    response = client_for(manager).post(
        reverse("admin:compliance_incident_add"),
        form_data(title="Sync outage, SSN 123-45-6789 reported"),
    )

    incident = Incident.objects.get()
    assert response.status_code == 302
    assert incident.reference == "PHI-2026-001"
    assert incident.title == "Sync outage, SSN [SSN] reported"
    assert incident.opened_by == manager


def test_an_incident_manager_can_edit_an_incident(
    manager: Any, incident: Incident
) -> None:
    response = client_for(manager).post(
        change_url(incident),
        form_data(root_cause="Expired OAuth token", data_categories=["health"]),
    )

    incident.refresh_from_db()
    assert response.status_code == 302
    assert incident.root_cause == "Expired OAuth token"
    assert incident.data_categories == ["health"]
    assert AuditEvent.objects.filter(action=AuditAction.INCIDENT_UPDATE).exists()


def test_staff_with_the_change_permission_can_edit_an_incident(
    incident: Incident,
) -> None:
    lead = factories.make_user(username="incident_lead", is_staff=True)
    lead.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="compliance",
            codename__in=["view_incident", "change_incident"],
        )
    )

    response = client_for(lead).post(
        change_url(incident), form_data(lessons_learned="Alert earlier")
    )

    incident.refresh_from_db()
    assert response.status_code == 302
    assert incident.lessons_learned == "Alert earlier"


def test_the_timeline_is_shown_to_a_compliance_officer(
    officer: Any, incident: Incident
) -> None:
    response = client_for(officer).get(change_url(incident))

    assert "Timeline (append-only)" in response.content.decode()
    assert "Incident opened." in response.content.decode()


def test_state_counts_above_the_total_are_refused_by_the_form(
    manager: Any, incident: Incident
) -> None:
    response = client_for(manager).post(
        change_url(incident),
        form_data(is_breach="on", individuals_affected="10", state_counts='{"CA": 11}'),
    )

    assert response.status_code == 200
    assert "more than the individuals affected" in response.content.decode()


def test_an_incident_manager_can_append_a_status_change(
    manager: Any, incident: Incident
) -> None:
    response = client_for(manager).post(
        timeline_url(incident), {"to_status": "investigating", "note": "Paged on-call"}
    )

    incident.refresh_from_db()
    assert response.status_code == 302
    assert incident.status == "investigating"
    assert incident.updates.last().note == "Paged on-call"


def test_a_compliance_officer_sees_the_incident_read_only(
    officer: Any, incident: Incident
) -> None:
    response = client_for(officer).get(change_url(incident))

    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()


def test_a_compliance_officer_is_not_offered_the_timeline_form_they_cannot_use(
    officer: Any, incident: Incident
) -> None:
    html = client_for(officer).get(change_url(incident)).content.decode()

    assert timeline_url(incident) not in html
    assert report_url(incident) in html


def test_an_incident_manager_is_offered_the_timeline_form(
    admin_user: Any, incident: Incident
) -> None:
    html = client_for(admin_user).get(change_url(incident)).content.decode()

    assert timeline_url(incident) in html


def test_a_compliance_officer_cannot_change_an_incident(
    officer: Any, incident: Incident
) -> None:
    response = client_for(officer).post(change_url(incident), form_data())

    assert response.status_code == 403


def test_a_compliance_officer_cannot_append_to_the_timeline(
    officer: Any, incident: Incident
) -> None:
    response = client_for(officer).post(timeline_url(incident), {"note": "x"})

    assert response.status_code == 403


def test_a_compliance_officer_can_download_the_report(
    officer: Any, incident: Incident
) -> None:
    response = client_for(officer).get(report_url(incident))

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        'attachment; filename="PHI-2026-001-incident-report.md"'
    )


def test_a_compliance_officer_can_list_retention_runs_but_not_add_one(
    officer: Any,
) -> None:
    client = client_for(officer)

    listing = client.get(reverse("admin:compliance_retentionrun_changelist"))
    adding = client.get(reverse("admin:compliance_retentionrun_add"))

    assert (listing.status_code, adding.status_code) == (200, 403)


def test_nobody_can_delete_an_incident(manager: Any, incident: Incident) -> None:
    response = client_for(manager).get(
        reverse("admin:compliance_incident_delete", args=[incident.pk])
    )

    assert response.status_code == 403


def test_a_plain_user_is_sent_to_the_admin_login(
    patient: Any, incident: Incident
) -> None:
    client = client_for(patient)

    pages = [change_url(incident), report_url(incident), timeline_url(incident)]

    for page in pages:
        response = client.get(page)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


def test_staff_without_incident_permissions_are_refused(
    staff_member: Any, incident: Incident
) -> None:
    client = client_for(staff_member)

    statuses = [client.get(change_url(incident)).status_code]
    statuses.append(client.get(report_url(incident)).status_code)

    assert statuses == [403, 403]


def test_the_admin_says_incident_text_is_redacted_on_save(
    manager: Any, incident: Incident
) -> None:
    response = client_for(manager).get(change_url(incident))

    assert "redacted on save" in response.content.decode()


def test_canaries_never_reach_the_admin_pages(
    manager: Any, canary_incident: Incident
) -> None:
    client = client_for(manager)
    pages = [
        reverse("admin:compliance_incident_changelist"),
        change_url(canary_incident),
        timeline_url(canary_incident),
        reverse("admin:compliance_incident_history", args=[canary_incident.pk]),
    ]

    bodies = [client.get(page).content.decode() for page in pages]

    assert not any(has_canary(body) for body in bodies)
    assert "[SSN]" in bodies[1]


def test_canaries_never_reach_the_report(
    officer: Any, canary_incident: Incident
) -> None:
    body = client_for(officer).get(report_url(canary_incident)).content.decode()

    assert not has_canary(body)
    assert "[EMAIL]" in body


def test_the_report_has_every_section(manager: Any, canary_incident: Incident) -> None:
    body = client_for(manager).get(report_url(canary_incident)).content.decode()

    headings = [line for line in body.splitlines() if line.startswith("## ")]
    assert headings == [
        "## 1. Summary",
        "## 2. Description",
        "## 3. Timeline",
        "## 4. Scope",
        "## 5. Root cause",
        "## 6. Fix applied",
        "## 7. Lessons learned",
        "## 8. Notification deadlines (HIPAA 45 CFR 164.404-164.408)",
    ]
    assert "| Notice to HHS (Secretary) | yes |" in body


def test_a_report_download_is_audited_as_an_export(
    officer: Any, incident: Incident
) -> None:
    updates_before = AuditEvent.objects.filter(
        action=AuditAction.INCIDENT_UPDATE
    ).count()

    client_for(officer).get(report_url(incident))

    event = AuditEvent.objects.get(action=AuditAction.INCIDENT_REPORT_EXPORT)
    assert event.actor == officer
    assert event.details == {"reference": incident.reference, "format": "markdown"}
    assert (
        AuditEvent.objects.filter(action=AuditAction.INCIDENT_UPDATE).count()
        == updates_before
    )


def test_the_list_labels_an_overdue_notice(manager: Any) -> None:
    breach = incidents.incident_open(
        title="Lost backup disk",
        severity="critical",
        category="backup",
        detected_at=timezone.now() - dt.timedelta(days=61),
    )
    incidents.incident_edit(
        incident=breach,
        actor=None,
        changes={"is_breach": True, "individuals_affected": 700},
    )

    response = client_for(manager).get(
        reverse("admin:compliance_incident_changelist") + "?deadline=overdue"
    )

    body = response.content.decode()
    assert "individuals: OVERDUE since" in body
    assert breach.reference in body
