"""`manage.py sanitize --jsonl`: sanitize JSON lines from stdin; needs no database or key."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat.sanitizer import sanitize


def sanitize_line(line: str, *, strict: bool) -> dict[str, Any]:
    """One input object ``{"id", "text"}`` → ``{"id", "sanitized", "blocked", "spans"}``."""
    record = json.loads(line)
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise ValueError("each line must be an object with a string 'text'")
    result = sanitize(record["text"], strict=strict)
    return {
        "id": record.get("id"),
        "sanitized": result.text,
        "blocked": result.blocked,
        "spans": [
            {"start": s.start, "end": s.end, "type": s.type} for s in result.spans
        ],
    }


class Command(BaseCommand):
    help = "Sanitize JSON lines {'id','text'} from stdin; write one result line each."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--jsonl",
            action="store_true",
            required=True,
            help="read and write JSON lines",
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="block critical identifier types (strict mode)",
        )

    def handle(self, *args: Any, strict: bool, **options: Any) -> None:
        for number, line in enumerate(sys.stdin, start=1):
            if not line.strip():
                continue
            try:
                out = sanitize_line(line, strict=strict)
            except (ValueError, json.JSONDecodeError):
                # The line's content is never echoed: only its number.
                raise CommandError(
                    f"line {number}: not a JSON object with 'text'"
                ) from None
            self.stdout.write(json.dumps(out, ensure_ascii=False))
