"""Calls into compliance (contracts A and B): audit rows and incidents for ops events.

Ops events are written by a system principal (or the acting staff user) with ids,
codes and counts only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest

from compliance.incidents import incident_open
from compliance.models import AuditAction
from compliance.services import audit_record


def ops_audit(
    action: str,
    *,
    actor: Any = None,
    system_principal: str = "",
    target_type: str = "",
    target_id: str | int = "",
    outcome: str = "success",
    details: Mapping[str, int | str | bool | list[str]] | None = None,
    request: HttpRequest | None = None,
) -> None:
    """Write one audit event named by its AuditAction member name (e.g. "BACKUP")."""
    audit_record(
        action=AuditAction[action],
        actor=actor,
        system_principal=system_principal if actor is None else "",
        target_type=target_type,
        target_id=target_id,
        outcome=outcome,
        details=dict(details or {}),
        request=request,
    )


def ops_incident_open(
    *, title: str, severity: str, category: str, source_key: str
) -> int | None:
    """Open (or find, by source_key) an incident; returns its id."""
    incident = incident_open(
        title=title, severity=severity, category=category, source_key=source_key
    )
    return int(incident.pk)
