"""Audit rows are append-only in the ORM and, by triggers, in the database itself."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from compliance.appendonly import audit_prune_window, triggers_present
from compliance.models import AuditAction, AuditEvent, AuditImmutableError
from compliance.services import audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def event() -> AuditEvent:
    return audit_record(action=AuditAction.JOB_RUN, system_principal="test")


def raw(sql: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


def test_the_triggers_exist_after_migrating() -> None:
    assert triggers_present() is True


def test_raw_sql_update_is_refused_by_the_database(event: AuditEvent) -> None:
    with pytest.raises(DatabaseError, match="append-only"):
        raw("UPDATE compliance_auditevent SET target_id = 'x'")

    assert AuditEvent.objects.get(pk=event.pk).target_id == ""


def test_raw_sql_delete_is_refused_by_the_database(event: AuditEvent) -> None:
    with pytest.raises(DatabaseError, match="append-only"):
        raw("DELETE FROM compliance_auditevent")

    assert AuditEvent.objects.filter(pk=event.pk).exists() is True


@pytest.mark.postgres_only
def test_raw_sql_truncate_is_refused_on_postgresql(event: AuditEvent) -> None:
    with pytest.raises(DatabaseError, match="append-only"):
        raw("TRUNCATE compliance_auditevent")


def test_orm_queryset_update_is_refused(event: AuditEvent) -> None:
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(target_id="x")


def test_orm_queryset_delete_is_refused(event: AuditEvent) -> None:
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.all().delete()


def test_saving_a_loaded_row_is_refused(event: AuditEvent) -> None:
    loaded = AuditEvent.objects.get(pk=event.pk)
    loaded.target_id = "x"

    with pytest.raises(AuditImmutableError):
        loaded.save()


def test_deleting_a_row_object_is_refused(event: AuditEvent) -> None:
    with pytest.raises(AuditImmutableError):
        event.delete()


def test_a_row_without_a_mac_cannot_be_inserted_around_the_chain() -> None:
    with pytest.raises(AuditImmutableError):
        AuditEvent(seq=99, action=AuditAction.LOGIN, prev_mac="0" * 64).save()


def test_the_prune_window_deletes_only_rows_older_than_its_cutoff(
    event: AuditEvent,
) -> None:
    with (
        transaction.atomic(),
        audit_prune_window(before=timezone.now() - dt.timedelta(days=1)),
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM compliance_auditevent")

    assert AuditEvent.objects.filter(pk=event.pk).exists() is True


def test_update_stays_refused_inside_the_prune_window(event: AuditEvent) -> None:
    with (
        audit_prune_window(before=None),
        pytest.raises(DatabaseError, match="append-only"),
    ):
        raw("UPDATE compliance_auditevent SET outcome = 'x'")


def test_the_prune_window_lets_rows_past_the_cutoff_be_deleted() -> None:
    import time_machine

    with time_machine.travel(timezone.now() - dt.timedelta(days=7 * 365)):
        old = audit_record(action=AuditAction.JOB_RUN, system_principal="test")
    recent = audit_record(action=AuditAction.JOB_RUN, system_principal="test")

    with (
        transaction.atomic(),
        audit_prune_window(before=timezone.now() - dt.timedelta(days=6 * 365)),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM compliance_auditevent WHERE seq = %s", [old.seq])

    assert list(AuditEvent.objects.values_list("seq", flat=True)) == [recent.seq]
