"""manage.py purge_expired: delete conversation data past its retention period."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from compliance import retention
from compliance.exceptions import RetentionRefused


def _moment(value: str) -> dt.datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError("--now must be an ISO 8601 date and time")
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


class Command(BaseCommand):
    help = (
        "Delete conversations, messages and LLM call records past "
        "DATA_RETENTION_DAYS (legal holds kept). Idempotent; run daily."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count only")
        parser.add_argument(
            "--force", action="store_true", help="run despite a clock-jump refusal"
        )
        parser.add_argument("--now", default="", help="ISO 8601 instant (default: now)")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        now = _moment(options["now"]) if options["now"] else timezone.now()
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            result = retention.purge(
                now=now,
                dry_run=options["dry_run"],
                batch_size=options["batch_size"],
                force=options["force"],
            )
        except RetentionRefused as exc:
            raise CommandError(
                f"purge_expired refused reason={exc.reason} "
                "(check the clock; --force overrides)"
            ) from None
        counts = " ".join(f"{key}={n}" for key, n in result.counts.items())
        self.stdout.write(
            f"purge_expired run={result.run_id} now={now.isoformat()} "
            f"dry_run={result.dry_run} deleted={result.total} {counts} "
            f"checkpoint={result.checkpoint}"
        )
