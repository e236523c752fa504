"""The downloadable incident report: every section of an incident in one Markdown file."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.template.loader import render_to_string

from compliance.models import DataCategory, Incident, IncidentUpdate
from compliance.selectors_incidents import incident_deadlines

TEMPLATE = "compliance/incident_report.md"
NOT_SET = "not set"


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return NOT_SET
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _who(update: IncidentUpdate) -> str:
    if update.actor_id is not None:
        return f"User #{update.actor_id}"
    return update.system_principal or "system"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    """One line, safe inside a Markdown table row."""
    return _one_line(text).replace("|", "\\|")


def _change(update: IncidentUpdate) -> str:
    if not update.to_status:
        return ""
    if not update.from_status:
        return f"set to {update.to_status}"
    return f"{update.from_status} -> {update.to_status}"


def report_filename(incident: Incident) -> str:
    """``PHI-2026-001-incident-report.md``"""
    return f"{incident.reference}-incident-report.md"


def incident_report_render(*, incident: Incident, now: dt.datetime) -> str:
    """Render the report as Markdown text.

    Only stored (already sanitized) text is used; people appear as ``User #id``.
    """
    labels = dict(DataCategory.choices)
    timeline = [
        {
            "at": _when(u.at),
            "who": _who(u),
            "change": _change(u),
            "note": _one_line(u.note),
        }
        for u in incident.updates.order_by("at", "id")
    ]
    context: dict[str, Any] = {
        "i": incident,
        "title": _cell(incident.title),
        "generated": _when(now),
        "detected": _when(incident.detected_at),
        "contained": _when(incident.contained_at),
        "resolved": _when(incident.resolved_at),
        "closed": _when(incident.closed_at),
        "opened_by": (
            f"User #{incident.opened_by_id}" if incident.opened_by_id else "system"
        ),
        "categories": [labels.get(c, c) for c in incident.data_categories],
        "states": sorted((incident.state_counts or {}).items()),
        "timeline": timeline,
        "deadlines": incident_deadlines(incident=incident, now=now),
        "not_set": NOT_SET,
    }
    return render_to_string(TEMPLATE, context)
