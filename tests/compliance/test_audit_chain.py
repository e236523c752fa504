"""The audit hash chain: tampering, deletion, reordering and truncation are detected."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.utils import timezone

from compliance import chain
from compliance.appendonly import triggers_drop
from compliance.models import AuditAction, AuditEvent
from compliance.services import audit_head_export, audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def heads(tmp_path: Path, settings: Any) -> Path:
    settings.AUDIT_HEAD_EXPORT_PATH = tmp_path / "audit_heads.jsonl"
    return settings.AUDIT_HEAD_EXPORT_PATH


def record(count: int) -> list[AuditEvent]:
    return [
        audit_record(
            action=AuditAction.CONVERSATION_VIEW,
            target_type="conversation",
            target_id=n,
            system_principal="test",
        )
        for n in range(1, count + 1)
    ]


def raw(sql: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def test_an_untouched_chain_verifies(heads: Path) -> None:
    record(5)

    report = chain.chain_verify()

    assert report.ok is True
    assert (report.checked, report.first_seq, report.last_seq) == (5, 1, 5)


def test_each_row_links_to_the_previous_mac(heads: Path) -> None:
    events = record(3)

    assert events[0].prev_mac == chain.GENESIS_MAC
    assert [e.prev_mac for e in events[1:]] == [e.mac for e in events[:-1]]
    assert [e.seq for e in events] == [1, 2, 3]


def test_an_edited_row_is_reported_at_its_seq(heads: Path) -> None:
    record(10)
    triggers_drop()

    raw("UPDATE compliance_auditevent SET target_id = '99' WHERE seq = 6")

    assert chain.chain_verify().broken == chain.ChainBreak(6, chain.EDITED)


def test_an_edited_details_field_is_reported(heads: Path) -> None:
    record(4)
    triggers_drop()

    raw("UPDATE compliance_auditevent SET outcome = 'failure' WHERE seq = 2")

    assert chain.chain_verify().broken == chain.ChainBreak(2, chain.EDITED)


def test_a_deleted_row_is_reported_as_a_gap_at_its_seq(heads: Path) -> None:
    record(10)
    triggers_drop()

    raw("DELETE FROM compliance_auditevent WHERE seq = 4")

    assert chain.chain_verify().broken == chain.ChainBreak(4, chain.DELETED)


def test_a_deleted_row_hidden_by_renumbering_is_still_a_deletion(heads: Path) -> None:
    record(8)
    triggers_drop()

    raw("DELETE FROM compliance_auditevent WHERE seq = 3")
    for seq in range(4, 9):
        raw("UPDATE compliance_auditevent SET seq = %s WHERE seq = %s", [seq - 1, seq])

    assert chain.chain_verify().broken == chain.ChainBreak(3, chain.DELETED)


def test_two_swapped_rows_are_reported_as_reordered(heads: Path) -> None:
    record(10)
    triggers_drop()

    raw("UPDATE compliance_auditevent SET seq = 1000 WHERE seq = 5")
    raw("UPDATE compliance_auditevent SET seq = 5 WHERE seq = 6")
    raw("UPDATE compliance_auditevent SET seq = 6 WHERE seq = 1000")

    assert chain.chain_verify().broken == chain.ChainBreak(5, chain.REORDERED)


def test_a_truncated_tail_is_reported_against_the_exported_head(heads: Path) -> None:
    record(9)
    exported = audit_head_export()
    triggers_drop()

    raw("DELETE FROM compliance_auditevent WHERE seq >= 8")
    raw("UPDATE compliance_auditchainhead SET seq = 7")

    assert exported.seq == 10
    assert chain.chain_verify().broken == chain.ChainBreak(8, chain.TRUNCATED)


def test_a_truncated_tail_is_reported_against_the_head_row_without_an_export(
    heads: Path,
) -> None:
    record(6)
    triggers_drop()

    raw("DELETE FROM compliance_auditevent WHERE seq >= 5")

    assert chain.chain_verify().broken == chain.ChainBreak(5, chain.TRUNCATED)


def test_rows_appended_after_the_export_still_verify(heads: Path) -> None:
    record(3)
    audit_head_export()
    record(3)

    report = chain.chain_verify()

    assert report.ok is True
    assert report.exported_seq == 4


def test_exported_heads_of_another_chain_are_ignored(heads: Path) -> None:
    heads.write_text('{"chain_id": "other", "seq": 500, "mac": "00"}\n')
    record(2)

    assert chain.chain_verify().ok is True


def test_a_row_rewritten_without_the_key_is_reported_as_edited(heads: Path) -> None:
    record(5)
    triggers_drop()
    row = AuditEvent.objects.values(*chain.FIELDS).get(seq=3)
    forged = {**row, "target_id": "77"}

    wrong_key = b"\x01" * 32
    raw(
        "UPDATE compliance_auditevent SET target_id = '77', mac = %s WHERE seq = 3",
        [chain.compute_mac(wrong_key, forged)],
    )

    assert chain.chain_verify().broken == chain.ChainBreak(3, chain.EDITED)


def test_verify_command_exits_non_zero_naming_the_seq_and_kind(heads: Path) -> None:
    record(7)
    triggers_drop()
    raw("UPDATE compliance_auditevent SET action = 'login' WHERE seq = 5")

    with pytest.raises(CommandError, match="broken_seq=5 kind=edited") as error:
        call_command("verify_audit_chain")

    assert error.value.returncode == 1


def test_verify_command_prints_ok_and_audits_itself(
    heads: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record(2)

    call_command("verify_audit_chain")

    assert "checked=2" in capsys.readouterr().out
    last = AuditEvent.objects.order_by("-seq").first()
    assert last is not None
    assert last.action == AuditAction.AUDIT_VERIFY
    assert last.details["checked"] == 2


def test_export_command_appends_a_head_line_that_includes_its_own_event(
    heads: Path,
) -> None:
    record(2)

    call_command("export_audit_head")
    call_command("export_audit_head")

    lines = heads.read_text().splitlines()
    assert len(lines) == 2
    assert [h.seq for h in chain.exported_heads(heads)] == [3, 4]
    assert AuditEvent.objects.get(seq=4).action == AuditAction.AUDIT_HEAD_EXPORT


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_writers_leave_one_valid_chain(heads: Path) -> None:
    errors: list[str] = []
    start = threading.Barrier(8)

    def writer(worker: int) -> None:
        try:
            start.wait()
            for n in range(25):
                audit_record(
                    action=AuditAction.JOB_RUN,
                    system_principal=f"worker{worker}",
                    details={"n": n},
                )
        except Exception as exc:  # collected and asserted below
            errors.append(type(exc).__name__)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    report = chain.chain_verify()
    assert errors == []
    assert report.ok is True
    assert (report.checked, report.last_seq) == (200, 200)


def test_verification_fails_when_the_triggers_are_gone(heads: Path) -> None:
    record(2)
    triggers_drop()

    report = chain.chain_verify()

    assert (report.broken, report.triggers_ok, report.ok) == (None, False, False)
    with pytest.raises(CommandError, match="triggers missing"):
        call_command("verify_audit_chain")


def test_pruning_past_retention_keeps_the_rest_of_the_chain_verifiable(
    heads: Path,
) -> None:
    start = timezone.now() - dt.timedelta(days=7 * 365)
    with time_machine.travel(start, tick=False):
        record(3)
    record(2)

    call_command("prune_audit_trail")

    report = chain.chain_verify()
    assert report.ok is True
    assert (report.first_seq, report.last_seq) == (4, 6)
    prune = AuditEvent.objects.get(action=AuditAction.RETENTION_RUN)
    assert prune.details["deleted"] == 3


def test_a_dry_run_prune_deletes_nothing(heads: Path) -> None:
    with time_machine.travel(timezone.now() - dt.timedelta(days=7 * 365)):
        record(2)

    call_command("prune_audit_trail", "--dry-run")

    assert AuditEvent.objects.filter(seq__lte=2).count() == 2


def test_rows_deleted_from_the_start_without_pruning_are_reported(heads: Path) -> None:
    record(4)
    triggers_drop()

    raw("DELETE FROM compliance_auditevent WHERE seq <= 2")

    assert chain.chain_verify().broken == chain.ChainBreak(1, chain.DELETED)
