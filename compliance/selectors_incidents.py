"""Read-side queries for incidents: notification deadlines and what is due or overdue."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from compliance import breach_deadlines as bd
from compliance.models import Incident

DUE_SOON_DAYS = 14
_DONE_FIELD = {
    bd.INDIVIDUALS: "individuals_notified_at",
    bd.HHS: "hhs_notified_at",
    bd.MEDIA: "media_notified_at",
}


@dataclass(frozen=True)
class DeadlineRow:
    """One notification deadline of an incident and where it stands."""

    kind: str
    label: str
    required: bool
    due: dt.date | None
    rule: str
    states: tuple[str, ...]
    done_on: dt.date | None
    status: str

    @property
    def overdue(self) -> bool:
        return self.status == bd.OVERDUE


@dataclass(frozen=True)
class DueDeadline:
    """A deadline that is overdue or falls within the look-ahead window (for alerts)."""

    incident_id: int
    reference: str
    kind: str
    due: dt.date
    overdue: bool
    days_left: int


def _utc_date(moment: dt.datetime | None) -> dt.date | None:
    return None if moment is None else moment.astimezone(dt.UTC).date()


def incident_deadlines(
    *, incident: Incident, now: dt.datetime, warn_days: int = DUE_SOON_DAYS
) -> list[DeadlineRow]:
    """The three HIPAA deadlines of a breach (empty list when it is not a breach)."""
    if not incident.is_breach:
        return []
    today = now.astimezone(dt.UTC).date()
    rows = []
    for deadline in bd.breach_deadlines(
        discovered=incident.detected_at.astimezone(dt.UTC).date(),
        individuals_affected=incident.individuals_affected,
        state_counts=incident.state_counts or {},
    ):
        done_on = _utc_date(getattr(incident, _DONE_FIELD[deadline.kind]))
        rows.append(
            DeadlineRow(
                kind=deadline.kind,
                label=deadline.label,
                required=deadline.required,
                due=deadline.due,
                rule=deadline.rule,
                states=deadline.states,
                done_on=done_on,
                status=bd.deadline_status(
                    deadline, today=today, done_on=done_on, warn_days=warn_days
                ),
            )
        )
    return rows


def incidents_with_deadlines_due(
    *, within_days: int, now: dt.datetime
) -> list[DueDeadline]:
    """Open notification deadlines that are overdue or due within ``within_days``.

    Deadlines already met (a notified-at time is set) are left out. Sorted by due
    date, then reference. For the ops alert rules and the admin.
    """
    today = now.astimezone(dt.UTC).date()
    due: list[DueDeadline] = []
    for incident in Incident.objects.filter(is_breach=True).order_by("id"):
        for row in incident_deadlines(incident=incident, now=now):
            if row.due is None or row.done_on is not None or not row.required:
                continue
            days_left = (row.due - today).days
            if days_left <= within_days:
                due.append(
                    DueDeadline(
                        incident_id=incident.pk,
                        reference=incident.reference,
                        kind=row.kind,
                        due=row.due,
                        overdue=days_left < 0,
                        days_left=days_left,
                    )
                )
    return sorted(due, key=lambda d: (d.due, d.reference, d.kind))
