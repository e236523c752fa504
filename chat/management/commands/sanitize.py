"""`manage.py sanitize --jsonl`: sanitize JSON lines from stdin; needs no database or key.

Strict mode and the critical types follow settings (PHI_SANITIZER_STRICT_MODE,
PHI_CRITICAL_TYPES) unless ``--strict`` / ``--no-strict`` says otherwise. A line that
is not an object with a string "text" gives ``{"id": <id or null>, "error":
"invalid_line"}`` and the run goes on; the line's content is never echoed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat.sanitizer import PHI_TYPES, sanitize

INVALID_LINE = "invalid_line"


class InvalidLine(ValueError):
    """The input line is not a JSON object with a string "text" (id kept if usable)."""

    def __init__(self, line_id: int | str | None) -> None:
        super().__init__(INVALID_LINE)
        self.line_id = line_id


def _usable_id(record: Any) -> int | str | None:
    """The record's id when it is a plain number or string; otherwise None."""
    if not isinstance(record, dict):
        return None
    value = record.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return value


def sanitize_line(
    line: str | bytes, *, strict: bool, critical_types: frozenset[str]
) -> dict[str, Any]:
    """One input object ``{"id", "text"}`` → ``{"id", "sanitized", "blocked", "spans"}``.

    Raises InvalidLine (carrying no input text) for anything else.
    """
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        raise InvalidLine(None) from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise InvalidLine(_usable_id(record))
    result = sanitize(record["text"], strict=strict, critical_types=critical_types)
    return {
        "id": record.get("id"),
        "sanitized": result.text,
        "blocked": result.blocked,
        "spans": [
            {"start": s.start, "end": s.end, "type": s.type} for s in result.spans
        ],
    }


def sanitize_lines(
    lines: Iterable[bytes], *, strict: bool, critical_types: frozenset[str]
) -> Iterator[dict[str, Any]]:
    """One output object per non-blank input line, errors included, in order."""
    for line in lines:
        if not line.strip():
            continue
        try:
            yield sanitize_line(line, strict=strict, critical_types=critical_types)
        except InvalidLine as exc:
            yield {"id": exc.line_id, "error": INVALID_LINE}


def _dumps(out: dict[str, Any]) -> str:
    """JSON with non-ASCII text as is, or escaped when it cannot be written as UTF-8
    (a lone surrogate from a "\\ud800" escape in the input)."""
    text = json.dumps(out, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(out)
    return text


def critical_types_from_settings() -> frozenset[str]:
    """settings.PHI_CRITICAL_TYPES as a set; unknown type names are a config error."""
    types = frozenset(str(t).strip().upper() for t in settings.PHI_CRITICAL_TYPES)
    unknown = sorted(types - PHI_TYPES)
    if unknown:
        raise CommandError(f"PHI_CRITICAL_TYPES has unknown types: {unknown}")
    return types


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
            action=argparse.BooleanOptionalAction,
            default=None,
            help="block critical identifier types (default: PHI_SANITIZER_STRICT_MODE)",
        )

    def handle(self, *args: Any, strict: bool | None, **options: Any) -> None:
        if strict is None:
            strict = bool(settings.PHI_SANITIZER_STRICT_MODE)
        critical = critical_types_from_settings()
        invalid = 0
        # Bytes, decoded per line: a line that is not UTF-8 is one invalid line,
        # not the end of the run.
        for out in sanitize_lines(
            sys.stdin.buffer, strict=strict, critical_types=critical
        ):
            invalid += "error" in out
            self.stdout.write(_dumps(out))
        if invalid:
            raise CommandError(f"{invalid} invalid line(s); see their error lines")
