"""Close conversations idle past SESSION_TIMEOUT_HOURS. Idempotent; run periodically."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from chat.services import sessions_cleanup


def _parse_now(value: str | None) -> datetime:
    if not value:
        return timezone.now()
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError("--now must be an ISO 8601 date-time")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


class Command(BaseCommand):
    help = "Close conversations idle past SESSION_TIMEOUT_HOURS. Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--now", help="ISO 8601 instant to treat as now (default: the clock)"
        )

    def handle(self, *args: Any, now: str | None = None, **options: Any) -> None:
        instant = _parse_now(now)
        closed = sessions_cleanup(now=instant)
        self.stdout.write(f"cleanup_sessions now={instant.isoformat()} closed={closed}")
