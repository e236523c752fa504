"""Audit rows are append-only in the ORM and, by triggers, in the database itself."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from compliance.appendonly import (
    POSTGRES_TRIGGERS,
    SQLITE_TRIGGERS,
    audit_prune_window,
    triggers_present,
)
from compliance.models import (
    AuditAction,
    AuditChainHead,
    AuditEvent,
    AuditImmutableError,
)
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


# --- The chain head row -------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM compliance_auditchainhead",
        "UPDATE compliance_auditchainhead SET chain_id = 'forged'",
        "UPDATE compliance_auditchainhead SET seq = seq - 1",
        "UPDATE compliance_auditchainhead SET mac = base_mac",
        "UPDATE compliance_auditchainhead SET base_seq = 1, base_mac = mac",
    ],
    ids=["delete", "rename", "lower_seq", "rewrite_mac", "move_base"],
)
def test_the_chain_head_row_cannot_be_deleted_or_rewound(
    event: AuditEvent, sql: str
) -> None:
    before = AuditChainHead.objects.values().get()

    with pytest.raises(DatabaseError, match="append-only"):
        raw(sql)

    assert AuditChainHead.objects.values().get() == before


@pytest.mark.postgres_only
def test_truncating_the_chain_head_is_refused_on_postgresql(event: AuditEvent) -> None:
    with pytest.raises(DatabaseError, match="append-only"):
        raw("TRUNCATE compliance_auditchainhead")


def test_the_head_still_advances_with_each_append(event: AuditEvent) -> None:
    later = audit_record(action=AuditAction.JOB_RUN, system_principal="test")

    head = AuditChainHead.objects.get()
    assert (head.seq, head.mac) == (later.seq, later.mac)


# --- triggers_present checks every trigger by name ----------------------------------


def drop_trigger(name: str, table: str) -> None:
    if connection.vendor == "postgresql":
        raw(f"DROP TRIGGER {name} ON {table}")
    else:
        raw(f"DROP TRIGGER {name}")


@pytest.mark.parametrize(
    "table",
    ["compliance_auditevent", "compliance_incidentupdate", "compliance_auditchainhead"],
)
def test_a_missing_trigger_on_any_guarded_table_is_noticed(table: str) -> None:
    triggers = SQLITE_TRIGGERS if connection.vendor == "sqlite" else POSTGRES_TRIGGERS
    name = next(n for t, n in triggers if t == table)

    drop_trigger(name, table)

    assert triggers_present() is False


@pytest.mark.sqlcipher_only
def test_look_alike_triggers_do_not_stand_in_for_the_real_ones() -> None:
    drop_trigger("compliance_auditevent_no_delete", "compliance_auditevent")

    raw(
        "CREATE TRIGGER compliance_auditevent_harmless AFTER INSERT "
        "ON compliance_auditevent BEGIN SELECT 1; END"
    )

    assert triggers_present() is False


@pytest.mark.postgres_only
def test_a_disabled_trigger_counts_as_missing_on_postgresql() -> None:
    raw(
        "ALTER TABLE compliance_auditevent "
        "DISABLE TRIGGER compliance_auditevent_no_change"
    )

    assert triggers_present() is False
