"""Read-side helpers for the audit trail (CSV rows for exports)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from compliance.models import AuditEvent

CSV_COLUMNS = (
    "seq",
    "at",
    "actor_id",
    "system_principal",
    "action",
    "target_type",
    "target_id",
    "outcome",
    "client_ip",
    "request_id",
    "details",
    "prev_mac",
    "mac",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"))
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    # A leading quote keeps spreadsheets from reading a cell as a formula.
    return "'" + text if text.startswith(FORMULA_START) else text


def _line(values: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([_cell(v) for v in values])
    return buffer.getvalue()


def audit_csv_lines(queryset: QuerySet[AuditEvent]) -> Iterator[str]:
    """The header and one CSV line per event, streamed in chunks."""
    yield _line(CSV_COLUMNS)
    for row in queryset.values_list(*CSV_COLUMNS).iterator(chunk_size=2000):
        yield _line(row)
