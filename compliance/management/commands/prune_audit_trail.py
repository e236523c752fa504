"""Dispose of audit events older than AUDIT_RETENTION_YEARS; a deliberate, manual job."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from compliance.services import audit_prune


class Command(BaseCommand):
    help = (
        "Delete audit events older than AUDIT_RETENTION_YEARS (oldest first; the chain "
        "stays verifiable). Not part of purge_expired. Audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--now", help="ISO datetime to use as now (UTC if naive)")

    def handle(
        self, *args: Any, dry_run: bool, now: str | None, **options: Any
    ) -> None:
        moment = parse_datetime(now) if now else timezone.now()
        if moment is None:
            raise CommandError("--now is not an ISO datetime")
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, dt.UTC)
        result = audit_prune(now=moment, dry_run=dry_run)
        self.stdout.write(
            f"prune_audit_trail dry_run={dry_run} deleted={result.deleted} "
            f"through_seq={result.through_seq}"
        )
