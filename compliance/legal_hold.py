"""Legal holds: who may set them, the fixed reasons, and what their audit row holds.

A held conversation is kept by the retention purge and cannot be deleted. Placing
or releasing a hold takes an explicit permission (granted per person, never by the
officers' group) and a reason from a fixed list, plus the reference of an existing
incident when there is one. No free text is accepted, so no PHI can reach the
LEGAL_HOLD_CHANGE audit row. chat.services_conversations applies the change.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models

from compliance.models import Incident

PERMISSION = "compliance.set_legal_hold"


class LegalHoldReason(models.TextChoices):
    LITIGATION = "litigation", "Litigation or anticipated litigation"
    REGULATOR_REQUEST = "regulator_request", "Regulator or law-enforcement request"
    INCIDENT_INVESTIGATION = "incident_investigation", "Incident investigation"
    INTERNAL_AUDIT = "internal_audit", "Internal audit"
    MATTER_CLOSED = "matter_closed", "Matter closed (release)"
    PLACED_IN_ERROR = "placed_in_error", "Placed in error (release)"


def legal_hold_permitted(user: Any) -> bool:
    """May this user place or release legal holds? (Active staff with PERMISSION.)"""
    return bool(
        user is not None
        and user.is_active
        and user.is_staff
        and user.has_perm(PERMISSION)
    )


def legal_hold_details(
    *, user: Any, on: bool, reason: str, incident_reference: str = ""
) -> dict[str, Any]:
    """Check a hold change and return its audit details (codes only).

    Raises PermissionDenied when ``user`` lacks the permission, and ValidationError
    for a reason outside LegalHoldReason or a reference that names no incident (the
    message never repeats the value).
    """
    if not legal_hold_permitted(user):
        raise PermissionDenied("legal_hold_permission_required")
    if reason not in LegalHoldReason.values:
        raise ValidationError("Choose a reason from the list.", code="reason")
    details: dict[str, Any] = {"on": bool(on), "reason": reason}
    reference = (incident_reference or "").strip().upper()
    if reference:
        incident = Incident.objects.filter(reference=reference).first()
        if incident is None:
            raise ValidationError("No incident has that reference.", code="incident")
        details.update(incident=incident.reference, incident_id=incident.pk)
    return details
