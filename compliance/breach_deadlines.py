"""HIPAA breach-notification deadlines computed from the date of discovery (pure).

45 CFR 164.404 (individuals), 164.408 (HHS) and 164.406 (media):

- individuals: without unreasonable delay, at the latest 60 calendar days after
  discovery;
- HHS: within 60 days of discovery when 500 or more individuals are affected,
  otherwise within 60 days after the end of the calendar year of discovery;
- prominent media outlets: within 60 days of discovery for each state or
  jurisdiction with MORE than 500 affected residents.

No Django imports, no clock: callers pass dates in, so every rule is testable on
its edges (499/500/501, 31 Dec / 1 Jan, leap years).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

NOTICE_DAYS = 60
HHS_IMMEDIATE_THRESHOLD = 500  # "500 or more" individuals
MEDIA_STATE_THRESHOLD = 500  # "more than 500" residents of one state

INDIVIDUALS = "individuals"
HHS = "hhs"
MEDIA = "media"
KINDS = (INDIVIDUALS, HHS, MEDIA)
KIND_LABELS = {
    INDIVIDUALS: "Notice to affected individuals",
    HHS: "Notice to HHS (Secretary)",
    MEDIA: "Notice to prominent media outlets",
}

# US states, DC and the territories HHS counts as jurisdictions.
STATE_CODES = frozenset(
    [
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "DC",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
        "AS",
        "GU",
        "MP",
        "PR",
        "VI",
    ]
)

# Status of one deadline at a given moment.
NOT_REQUIRED = "not required"
DONE = "done"
DONE_LATE = "done late"
PENDING = "pending"
DUE_SOON = "due soon"
OVERDUE = "OVERDUE"


@dataclass(frozen=True)
class Deadline:
    """One notification obligation: who, by when, whether it applies, and why."""

    kind: str
    required: bool
    due: dt.date | None
    rule: str
    states: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]


def year_end_deadline(discovered: dt.date) -> dt.date:
    """60 days after 31 December of the year of discovery (1 Mar, or 29 Feb)."""
    return dt.date(discovered.year, 12, 31) + dt.timedelta(days=NOTICE_DAYS)


def media_states(state_counts: Mapping[str, int]) -> tuple[str, ...]:
    """States with more than 500 affected residents, sorted by code."""
    return tuple(
        sorted(
            code
            for code, count in state_counts.items()
            if count > MEDIA_STATE_THRESHOLD
        )
    )


def breach_deadlines(
    *,
    discovered: dt.date,
    individuals_affected: int,
    state_counts: Mapping[str, int],
) -> tuple[Deadline, Deadline, Deadline]:
    """Return the individuals, HHS and media deadlines for a breach.

    ``discovered`` is the date of discovery (a ``datetime`` is reduced to its date,
    so pass it in UTC). Counts must be non-negative; ValueError otherwise.
    """
    if isinstance(discovered, dt.datetime):
        discovered = discovered.date()
    if individuals_affected < 0 or any(c < 0 for c in state_counts.values()):
        raise ValueError("affected counts must not be negative")
    within_60 = discovered + dt.timedelta(days=NOTICE_DAYS)
    individuals = Deadline(
        kind=INDIVIDUALS,
        required=individuals_affected > 0,
        due=within_60 if individuals_affected > 0 else None,
        rule="within 60 days of discovery",
    )
    if individuals_affected >= HHS_IMMEDIATE_THRESHOLD:
        hhs = Deadline(
            kind=HHS,
            required=True,
            due=within_60,
            rule="500 or more affected: within 60 days of discovery",
        )
    else:
        hhs = Deadline(
            kind=HHS,
            required=individuals_affected > 0,
            due=year_end_deadline(discovered) if individuals_affected > 0 else None,
            rule="fewer than 500 affected: within 60 days after the end of the "
            "calendar year of discovery",
        )
    states = media_states(state_counts)
    media = Deadline(
        kind=MEDIA,
        required=bool(states),
        due=within_60 if states else None,
        rule="more than 500 residents of one state: within 60 days of discovery",
        states=states,
    )
    return individuals, hhs, media


def deadline_status(
    deadline: Deadline,
    *,
    today: dt.date,
    done_on: dt.date | None,
    warn_days: int = 14,
) -> str:
    """Where one deadline stands on ``today``: one of the status constants above."""
    if not deadline.required or deadline.due is None:
        return NOT_REQUIRED
    if done_on is not None:
        return DONE if done_on <= deadline.due else DONE_LATE
    if today > deadline.due:
        return OVERDUE
    if (deadline.due - today).days <= warn_days:
        return DUE_SOON
    return PENDING
