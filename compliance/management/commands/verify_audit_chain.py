"""Verify the audit hash chain; exit 1 and name the first broken seq and its kind."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from compliance.services import audit_chain_verify

PRINCIPAL = "verify_audit_chain"


class Command(BaseCommand):
    help = "Verify the audit trail's HMAC chain and the exported head. Audited."

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_chain_verify(system_principal=PRINCIPAL)
        exported = report.exported_seq if report.exported_seq is not None else "none"
        summary = (
            f"verify_audit_chain checked={report.checked} first={report.first_seq} "
            f"last={report.last_seq} exported_head={exported} "
            f"triggers={'ok' if report.triggers_ok else 'missing'}"
        )
        if report.broken is not None:
            raise CommandError(
                f"{summary} broken_seq={report.broken.seq} kind={report.broken.kind}",
                returncode=1,
            )
        if not report.triggers_ok:
            raise CommandError(f"{summary} append-only triggers missing", returncode=1)
        self.stdout.write(f"{summary} ok")
