"""Append the audit chain head (seq, MAC) to a file outside the database."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from compliance.services import audit_head_export


class Command(BaseCommand):
    help = "Append the audit chain head to AUDIT_HEAD_EXPORT_PATH. Run periodically."

    def handle(self, *args: Any, **options: Any) -> None:
        head = audit_head_export()
        self.stdout.write(
            f"export_audit_head seq={head.seq} path={settings.AUDIT_HEAD_EXPORT_PATH}"
        )
