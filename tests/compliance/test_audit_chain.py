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
from compliance.models import AuditAction, AuditEvent
from compliance.services import audit_head_export, audit_record
from tests.compliance.triggers import triggers_drop

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


# --- The chain head: truncation cannot be hidden by forging the head row ----------


def mac_of(seq: int) -> str:
    return AuditEvent.objects.values_list("mac", flat=True).get(seq=seq)


def test_deleting_the_tail_and_the_head_row_is_caught_by_the_exported_head(
    heads: Path,
) -> None:
    record(9)
    audit_head_export()
    triggers_drop()

    raw("DELETE FROM compliance_auditevent WHERE seq >= 8")
    raw("DELETE FROM compliance_auditchainhead")

    assert chain.chain_verify().broken == chain.ChainBreak(8, chain.TRUNCATED)


def test_a_missing_head_row_is_reported_when_events_exist(heads: Path) -> None:
    record(6)
    triggers_drop()

    raw("DELETE FROM compliance_auditevent WHERE seq >= 5")
    raw("DELETE FROM compliance_auditchainhead")

    assert chain.chain_verify().broken == chain.ChainBreak(5, chain.HEAD_MISSING)


def test_renaming_the_chain_in_the_head_row_does_not_hide_a_truncation(
    heads: Path,
) -> None:
    record(9)
    audit_head_export()
    triggers_drop()

    raw("DELETE FROM compliance_auditevent WHERE seq >= 8")
    raw(
        "UPDATE compliance_auditchainhead SET chain_id = 'forged', seq = 7, mac = %s",
        [mac_of(7)],
    )

    assert chain.chain_verify().broken == chain.ChainBreak(8, chain.TRUNCATED)


def test_a_renamed_chain_is_reported_even_without_a_truncation(heads: Path) -> None:
    record(3)
    triggers_drop()

    raw("UPDATE compliance_auditchainhead SET chain_id = 'forged'")

    assert chain.chain_verify().broken == chain.ChainBreak(3, chain.HEAD_MISMATCH)


def test_the_exported_chain_id_comes_from_the_key_not_the_head_row(
    heads: Path,
) -> None:
    record(1)

    exported = audit_head_export()

    assert exported.chain_id == chain.chain_id(chain.audit_key())
    assert f'"chain_id": "{exported.chain_id}"' in heads.read_text()


def test_an_append_after_the_head_row_was_deleted_records_the_loss(
    heads: Path,
) -> None:
    record(9)
    audit_head_export()
    triggers_drop()
    raw("DELETE FROM compliance_auditevent WHERE seq >= 8")
    raw("DELETE FROM compliance_auditchainhead")

    record(1)

    rebuilt = AuditEvent.objects.get(seq=8)
    assert (rebuilt.action, rebuilt.details) == (
        AuditAction.AUDIT_HEAD_REBUILT,
        {"last_seq": 7},
    )
    assert chain.chain_verify().broken == chain.ChainBreak(8, chain.TRUNCATED)


def test_a_tail_regrown_past_the_exported_head_is_reported_where_it_was_cut(
    heads: Path,
) -> None:
    record(9)
    audit_head_export()
    triggers_drop()
    raw("DELETE FROM compliance_auditevent WHERE seq >= 8")
    raw("DELETE FROM compliance_auditchainhead")

    record(5)

    assert AuditEvent.objects.order_by("-seq").first().seq == 13
    assert chain.chain_verify().broken == chain.ChainBreak(8, chain.TRUNCATED)


def test_every_exported_head_must_match_the_row_at_its_seq(heads: Path) -> None:
    record(4)
    name = chain.chain_id(chain.audit_key())

    heads.write_text(f'{{"chain_id": "{name}", "seq": 2, "mac": "{"ab" * 32}"}}\n')

    assert chain.chain_verify().broken == chain.ChainBreak(2, chain.HEAD_MISMATCH)


def test_an_older_exported_head_is_checked_as_well_as_the_latest(
    heads: Path,
) -> None:
    record(4)
    name = chain.chain_id(chain.audit_key())
    heads.write_text(f'{{"chain_id": "{name}", "seq": 2, "mac": "{"ab" * 32}"}}\n')

    audit_head_export()

    assert len(chain.exported_heads(heads)) == 2
    assert chain.chain_verify().broken == chain.ChainBreak(2, chain.HEAD_MISMATCH)


def test_a_head_row_moved_back_behind_the_chain_is_reported(heads: Path) -> None:
    record(5)
    triggers_drop()

    raw("UPDATE compliance_auditchainhead SET seq = 3, mac = %s", [mac_of(3)])

    assert chain.chain_verify().broken == chain.ChainBreak(4, chain.HEAD_MISMATCH)


def test_the_scheduled_head_export_entry_point_is_audited_under_its_principal(
    heads: Path,
) -> None:
    record(2)

    exported = audit_head_export(system_principal="job:audit_head_export")

    event = AuditEvent.objects.get(seq=exported.seq)
    assert (event.action, event.system_principal) == (
        AuditAction.AUDIT_HEAD_EXPORT,
        "job:audit_head_export",
    )


def test_an_old_head_rebuild_does_not_move_a_later_cut(heads: Path) -> None:
    record(3)
    triggers_drop()
    raw("DELETE FROM compliance_auditchainhead")
    record(1)
    audit_head_export()
    record(2)
    audit_head_export()

    raw("DELETE FROM compliance_auditevent WHERE seq >= 8")
    raw("UPDATE compliance_auditchainhead SET seq = 7, mac = %s", [mac_of(7)])

    assert AuditEvent.objects.get(seq=4).action == AuditAction.AUDIT_HEAD_REBUILT
    assert chain.chain_verify().broken == chain.ChainBreak(8, chain.TRUNCATED)
