"""The audit trail in the admin: who may read it, nobody may change it, exports."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import RequestFactory
from django.urls import reverse

from compliance.models import AuditAction, AuditEvent
from compliance.roles import OFFICERS, officer_permissions, roles_setup
from compliance.services import audit_record, content_access_check
from tests.conftest import mfa_verified_client

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:compliance_auditevent_changelist")
EXPORT = reverse("admin:compliance_auditevent_export")
VERIFY = reverse("admin:compliance_auditevent_verify")


@pytest.fixture
def event(patient: Any) -> AuditEvent:
    return audit_record(
        action=AuditAction.CONVERSATION_VIEW,
        actor=patient,
        target_type="conversation",
        target_id=41,
    )


def change_url(event: AuditEvent) -> str:
    return reverse("admin:compliance_auditevent_change", args=[event.pk])


def delete_url(event: AuditEvent) -> str:
    return reverse("admin:compliance_auditevent_delete", args=[event.pk])


def csv_rows(response: Any) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_an_officer_can_read_the_list_and_an_event(
    officer_client: Any, event: AuditEvent
) -> None:
    assert officer_client.get(CHANGELIST).status_code == 200
    assert officer_client.get(change_url(event)).status_code == 200


def test_an_officer_cannot_change_an_event(
    officer_client: Any, event: AuditEvent
) -> None:
    response = officer_client.post(change_url(event), {"target_id": "1"})

    assert response.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).target_id == "41"


def test_an_officer_cannot_delete_or_add_events(
    officer_client: Any, event: AuditEvent
) -> None:
    assert officer_client.post(delete_url(event), {"post": "yes"}).status_code == 403
    add = reverse("admin:compliance_auditevent_add")
    assert officer_client.get(add).status_code == 403


def test_the_list_offers_no_delete_action(
    officer_client: Any, event: AuditEvent
) -> None:
    response = officer_client.get(CHANGELIST)

    choices = [
        name for name, _ in response.context["action_form"].fields["action"].choices
    ]
    assert "delete_selected" not in choices
    assert "export_selected_csv" in choices


def test_a_superuser_cannot_change_or_delete_events_either(
    mfa_admin_client: Any, event: AuditEvent
) -> None:
    assert (
        mfa_admin_client.post(change_url(event), {"target_id": "1"}).status_code == 403
    )
    assert mfa_admin_client.post(delete_url(event), {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk, target_id="41").exists() is True


def test_a_plain_user_is_sent_to_the_admin_login(
    client: Any, patient: Any, event: AuditEvent
) -> None:
    client.force_login(patient)

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_the_view_permission_get_403(
    staff_member: Any, event: AuditEvent
) -> None:
    client = mfa_verified_client(staff_member)

    assert client.get(CHANGELIST).status_code == 403
    assert client.get(EXPORT).status_code == 403


def test_the_officers_group_reads_compliance_records_only() -> None:
    group = roles_setup()

    codenames = set(group.permissions.values_list("codename", flat=True))
    assert group.name == OFFICERS
    assert "view_auditevent" in codenames
    assert all(code.startswith("view_") for code in codenames)
    assert "view_conversation_content" not in codenames
    assert {p.codename for p in officer_permissions()} == codenames


def test_the_officers_group_gets_no_view_of_axes_records() -> None:
    group = roles_setup()
    group.permissions.add(*Permission.objects.filter(content_type__app_label="axes"))

    group = roles_setup()

    labels = set(group.permissions.values_list("content_type__app_label", flat=True))
    assert labels == {"compliance"}


def test_an_officer_cannot_open_axes_attempt_records(officer_client: Any) -> None:
    response = officer_client.get(reverse("admin:axes_accessattempt_changelist"))

    assert response.status_code == 403


def test_setting_up_roles_twice_changes_nothing() -> None:
    first = set(roles_setup().permissions.all())

    assert set(roles_setup().permissions.all()) == first


def test_the_csv_export_streams_the_filtered_rows_and_is_audited(
    officer_client: Any, compliance_officer: Any, patient: Any, event: AuditEvent
) -> None:
    audit_record(action=AuditAction.JOB_RUN, system_principal="test")

    response = officer_client.get(EXPORT, {"actor_id": patient.pk})

    rows = csv_rows(response)
    assert response["Content-Type"].startswith("text/csv")
    assert [(r["seq"], r["target_id"]) for r in rows] == [(str(event.seq), "41")]
    export = AuditEvent.objects.filter(action=AuditAction.AUDIT_EXPORT).get()
    assert (export.actor_id, export.details) == (
        compliance_officer.pk,
        {"rows": 1, "format": "csv"},
    )


def test_the_audited_row_count_matches_the_exported_file(
    officer_client: Any, event: AuditEvent
) -> None:
    response = officer_client.get(EXPORT)

    rows = csv_rows(response)
    export = AuditEvent.objects.get(action=AuditAction.AUDIT_EXPORT)
    assert export.details["rows"] == len(rows)
    assert str(export.seq) not in {r["seq"] for r in rows}


def test_the_export_action_exports_the_selected_rows(
    officer_client: Any, event: AuditEvent
) -> None:
    response = officer_client.post(
        CHANGELIST,
        {"action": "export_selected_csv", "_selected_action": [event.pk]},
    )

    assert [r["seq"] for r in csv_rows(response)] == [str(event.seq)]
    assert AuditEvent.objects.filter(action=AuditAction.AUDIT_EXPORT).count() == 1


def test_the_date_range_filter_bounds_the_list(
    officer_client: Any, event: AuditEvent
) -> None:
    day = event.at.date().isoformat()

    inside = officer_client.get(CHANGELIST, {"at_from": day, "at_to": day})
    before = officer_client.get(CHANGELIST, {"at_to": "2000-01-01"})

    assert inside.context["cl"].result_count >= 1
    assert before.context["cl"].result_count == 0


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "9" * 30, "-1"])
def test_an_actor_filter_that_is_not_an_ascii_user_id_is_ignored(
    officer_client: Any, event: AuditEvent, value: str
) -> None:
    response = officer_client.get(CHANGELIST, {"actor_id": value})

    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1


def test_search_finds_events_by_target_id(
    officer_client: Any, event: AuditEvent
) -> None:
    response = officer_client.get(CHANGELIST, {"q": "41"})

    assert [e.pk for e in response.context["cl"].result_list] == [event.pk]


def test_the_verify_button_reports_and_audits(
    officer_client: Any, event: AuditEvent
) -> None:
    response = officer_client.post(VERIFY, follow=True)

    assert "Audit chain intact" in response.content.decode()
    assert AuditEvent.objects.filter(action=AuditAction.AUDIT_VERIFY).count() == 1
    assert officer_client.get(VERIFY).status_code == 405


def test_content_access_without_the_permission_is_refused_and_audited(
    staff_member: Any,
) -> None:
    request = RequestFactory().get("/admin/")

    allowed = content_access_check(
        user=staff_member, conversation_id=7, request=request
    )

    event = AuditEvent.objects.get(action=AuditAction.ACCESS_DENIED)
    assert allowed is False
    assert (event.target_type, event.target_id, event.outcome) == (
        "conversation",
        "7",
        "denied",
    )


def test_content_access_with_the_permission_is_granted_and_audited(
    staff_member: Any,
) -> None:
    staff_member.user_permissions.add(
        Permission.objects.get(codename="view_conversation_content")
    )
    staff_member = type(staff_member).objects.get(pk=staff_member.pk)

    allowed = content_access_check(user=staff_member, conversation_id=7, request=None)

    assert allowed is True
    assert AuditEvent.objects.filter(action=AuditAction.STAFF_CONTENT_VIEW).count() == 1
