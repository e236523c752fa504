"""Incident services: open (de-duplicated by source key), edit, move status, add notes.

Every free-text field passes through ``compliance.text_guard.guard`` before it is
saved, so identifiers are redacted (and the text is withheld entirely if no
sanitizer is available). Every change is audited (INCIDENT_CREATE / INCIDENT_UPDATE)
with ids, field names and statuses only, and appended to the incident's timeline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from compliance import text_guard
from compliance.breach_deadlines import STATE_CODES
from compliance.incident_report import incident_report_render, report_filename
from compliance.models import (
    ACTIVE_STATUSES,
    AuditAction,
    DataCategory,
    Incident,
    IncidentCategory,
    IncidentSequence,
    IncidentStatus,
    IncidentUpdate,
    Severity,
)
from compliance.services import audit_record

if TYPE_CHECKING:
    from accounts.models import User

S = IncidentStatus
TRANSITIONS: Mapping[str, frozenset[str]] = {
    S.OPEN: frozenset({S.INVESTIGATING, S.CONTAINED, S.RESOLVED}),
    S.INVESTIGATING: frozenset({S.CONTAINED, S.RESOLVED}),
    S.CONTAINED: frozenset({S.INVESTIGATING, S.RESOLVED}),
    S.RESOLVED: frozenset({S.CLOSED, S.INVESTIGATING}),
    S.CLOSED: frozenset(),
}
TEXT_FIELDS = ("title", "description", "root_cause", "fix_applied", "lessons_learned")
EDITABLE_FIELDS = (
    *TEXT_FIELDS,
    "severity",
    "category",
    "detected_at",
    "users_affected",
    "data_categories",
    "is_breach",
    "individuals_affected",
    "state_counts",
    "individuals_notified_at",
    "hhs_notified_at",
    "media_notified_at",
)
TITLE_MAX = 200
TEXT_MAX = 20_000
SYSTEM_PRINCIPAL = "incidents"


def reference_for(year: int, number: int) -> str:
    """``PHI-2026-001``; the number widens past 999 rather than wrapping."""
    return f"PHI-{year}-{number:03d}"


def allowed_transitions(status: str) -> frozenset[str]:
    """Statuses an incident in ``status`` may move to."""
    return TRANSITIONS.get(status, frozenset())


def _allocate_number(year: int) -> int:
    """Next number for ``year``; call inside a transaction (the row stays locked)."""
    bump = {"last_number": F("last_number") + 1}
    if not IncidentSequence.objects.filter(year=year).update(**bump):
        try:
            with transaction.atomic():
                IncidentSequence.objects.create(year=year, last_number=1)
            return 1
        except IntegrityError:  # another writer created the year's row first
            IncidentSequence.objects.filter(year=year).update(**bump)
    return IncidentSequence.objects.get(year=year).last_number


@sensitive_variables("text")
def _clean_text(text: str, *, field: str, limit: int) -> str:
    if not isinstance(text, str):
        raise ValidationError("Incident text must be a string.", code="invalid")
    if len(text) > limit:
        raise ValidationError(f"{field} is too long.", code="too_long")
    return text_guard.guard(text.strip())


def _validate_choices(*, severity: str, category: str) -> None:
    if severity not in Severity.values:
        raise ValidationError("Unknown severity.", code="invalid_severity")
    if category not in IncidentCategory.values:
        raise ValidationError("Unknown category.", code="invalid_category")


def validate_scope(
    *, data_categories: list[str], individuals_affected: int, state_counts: Any
) -> dict[str, int]:
    """Check data categories and per-state counts; return the normalised counts."""
    if not isinstance(data_categories, list) or not set(data_categories) <= set(
        DataCategory.values
    ):
        raise ValidationError("Unknown data category.", code="invalid_category")
    if not isinstance(state_counts, Mapping):
        raise ValidationError("State counts must be a mapping.", code="invalid")
    counts: dict[str, int] = {}
    for code, count in state_counts.items():
        code = str(code).strip().upper()
        if code not in STATE_CODES:
            raise ValidationError("Unknown state code.", code="invalid_state")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValidationError("State counts must be whole numbers.", code="invalid")
        counts[code] = counts.get(code, 0) + count
    if sum(counts.values()) > individuals_affected:
        raise ValidationError(
            "Per-state counts add up to more than the individuals affected.",
            code="state_total",
        )
    return dict(sorted(counts.items()))


def _principal(actor: User | None, system_principal: str) -> dict[str, Any]:
    if actor is not None:
        return {"actor": actor}
    return {"system_principal": system_principal or SYSTEM_PRINCIPAL}


@sensitive_variables("title", "description")
def incident_open(
    *,
    title: str,
    severity: str,
    category: str,
    description: str = "",
    detected_at: dt.datetime | None = None,
    actor: User | None = None,
    source_key: str = "",
    system_principal: str = "",
    request: HttpRequest | None = None,
) -> Incident:
    """Open an incident with the next reference of its discovery year.

    Title and description are sanitized before saving. When ``source_key`` is given
    and an incident with that key is still open (open / investigating / contained),
    that incident is returned unchanged instead. Raises ValidationError on an
    unknown severity or category or an empty title. Audited as INCIDENT_CREATE.
    """
    _validate_choices(severity=severity, category=category)
    clean_title = _clean_text(title, field="title", limit=TITLE_MAX)
    if not clean_title:
        raise ValidationError("An incident needs a title.", code="required")
    clean_description = _clean_text(description, field="description", limit=TEXT_MAX)
    detected = detected_at or timezone.now()
    source_key = source_key.strip()[:200]
    who = _principal(actor, system_principal)
    if source_key and (found := _active_with_key(source_key)):
        return found
    try:
        with transaction.atomic():
            year = detected.astimezone(dt.UTC).year
            number = _allocate_number(year)
            incident = Incident.objects.create(
                reference=reference_for(year, number),
                year=year,
                number=number,
                title=clean_title,
                severity=severity,
                category=category,
                description=clean_description,
                detected_at=detected,
                source_key=source_key,
                opened_by=actor,
            )
            IncidentUpdate.objects.create(
                incident=incident,
                at=timezone.now(),
                to_status=IncidentStatus.OPEN,
                note="Incident opened.",
                **who,
            )
            audit_record(
                action=AuditAction.INCIDENT_CREATE,
                target_type="incident",
                target_id=incident.pk,
                details={
                    "reference": incident.reference,
                    "severity": severity,
                    "category": category,
                },
                request=request,
                **who,
            )
    except IntegrityError:
        if source_key and (found := _active_with_key(source_key)):
            return found
        raise
    return incident


def _active_with_key(source_key: str) -> Incident | None:
    return (
        Incident.objects.filter(source_key=source_key, status__in=ACTIVE_STATUSES)
        .order_by("id")
        .first()
    )


def _locked(incident: Incident) -> Incident:
    return Incident.objects.select_for_update().get(pk=incident.pk)


@sensitive_variables("note")
def incident_transition(
    *,
    incident: Incident,
    to_status: str,
    actor: User | None,
    note: str = "",
    at: dt.datetime | None = None,
    system_principal: str = "",
    request: HttpRequest | None = None,
) -> Incident:
    """Move an incident to ``to_status`` (see TRANSITIONS) and record it.

    Sets contained_at / resolved_at / closed_at when first entering those statuses
    (reopening clears resolved_at). The note is sanitized. Raises ValidationError
    for a transition that is not allowed. Audited as INCIDENT_UPDATE.
    """
    clean_note = _clean_text(note, field="note", limit=TEXT_MAX)
    when = at or timezone.now()
    who = _principal(actor, system_principal)
    with transaction.atomic():
        current = _locked(incident)
        from_status = current.status
        if to_status not in allowed_transitions(from_status):
            raise ValidationError(
                "That status change is not allowed.", code="invalid_transition"
            )
        current.status = to_status
        if to_status in (S.CONTAINED, S.RESOLVED) and current.contained_at is None:
            current.contained_at = when
        if to_status == S.RESOLVED:
            current.resolved_at = when
        if to_status == S.INVESTIGATING:
            current.resolved_at = None
        if to_status == S.CLOSED:
            current.closed_at = when
        current.save()
        IncidentUpdate.objects.create(
            incident=current,
            at=when,
            from_status=from_status,
            to_status=to_status,
            note=clean_note,
            **who,
        )
        _audit_update(current, who, request, {"from": from_status, "to": to_status})
    return current


@sensitive_variables("note")
def incident_add_note(
    *,
    incident: Incident,
    actor: User | None,
    note: str,
    system_principal: str = "",
    request: HttpRequest | None = None,
) -> IncidentUpdate:
    """Append a sanitized note to the timeline (no status change). Audited."""
    clean_note = _clean_text(note, field="note", limit=TEXT_MAX)
    if not clean_note:
        raise ValidationError("A timeline note cannot be empty.", code="required")
    who = _principal(actor, system_principal)
    with transaction.atomic():
        update = IncidentUpdate.objects.create(
            incident=incident, at=timezone.now(), note=clean_note, **who
        )
        _audit_update(incident, who, request, {"timeline_note": True})
    return update


@sensitive_variables("changes")
def incident_edit(
    *,
    incident: Incident,
    actor: User | None,
    changes: Mapping[str, Any],
    request: HttpRequest | None = None,
) -> Incident:
    """Change report fields (EDITABLE_FIELDS); status moves via incident_transition.

    Text is sanitized, choices and breach scope validated (ValidationError). A
    timeline entry names the changed fields (never their values). Audited.
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError("Those fields cannot be edited.", code="not_editable")
    values = dict(changes)
    for field in TEXT_FIELDS:
        if field in values:
            limit = TITLE_MAX if field == "title" else TEXT_MAX
            values[field] = _clean_text(values[field] or "", field=field, limit=limit)
    if "title" in values and not values["title"]:
        raise ValidationError("An incident needs a title.", code="required")
    who = _principal(actor, "")
    with transaction.atomic():
        current = _locked(incident)
        for field, value in values.items():
            setattr(current, field, value)
        _validate_choices(severity=current.severity, category=current.category)
        current.state_counts = validate_scope(
            data_categories=current.data_categories,
            individuals_affected=current.individuals_affected,
            state_counts=current.state_counts,
        )
        current.save()
        fields = sorted(values)
        if fields:
            IncidentUpdate.objects.create(
                incident=current,
                at=timezone.now(),
                note="Report fields changed: " + ", ".join(fields) + ".",
                **who,
            )
            _audit_update(current, who, request, {"fields": fields})
    return current


def _audit_update(
    incident: Incident,
    who: dict[str, Any],
    request: HttpRequest | None,
    extra: Mapping[str, str | bool | list[str]],
) -> None:
    audit_record(
        action=AuditAction.INCIDENT_UPDATE,
        target_type="incident",
        target_id=incident.pk,
        details={"reference": incident.reference, **extra},
        request=request,
        **who,
    )


def incident_report_download(
    *, incident: Incident, actor: User | None, request: HttpRequest | None = None
) -> tuple[str, str]:
    """Render the incident report; return (filename, Markdown text).

    Audited as INCIDENT_REPORT_EXPORT (a read, not a change to the incident).
    The report holds only stored, already sanitized text.
    """
    text = incident_report_render(incident=incident, now=timezone.now())
    audit_record(
        action=AuditAction.INCIDENT_REPORT_EXPORT,
        target_type="incident",
        target_id=incident.pk,
        details={"reference": incident.reference, "format": "markdown"},
        request=request,
        **_principal(actor, ""),
    )
    return report_filename(incident), text
