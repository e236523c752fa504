"""Shared option: ``--now`` (ISO 8601) so commands can run at a chosen instant."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime


def add_now_option(parser: CommandParser) -> None:
    parser.add_argument("--now", default="", help="ISO 8601 instant (default: now)")


def moment(value: str) -> dt.datetime:
    if not value:
        return timezone.now()
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError("--now must be an ISO 8601 date and time")
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=dt.UTC)
