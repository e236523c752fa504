"""HIPAA breach-notification deadline rules on their edges (pure, no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from compliance import breach_deadlines as bd

D = dt.date


def deadlines(discovered: dt.date, affected: int, states: dict[str, int] | None = None):
    return bd.breach_deadlines(
        discovered=discovered, individuals_affected=affected, state_counts=states or {}
    )


def test_individuals_are_due_60_days_after_discovery() -> None:
    individuals, _, _ = deadlines(D(2026, 3, 10), 12)

    assert individuals.required is True
    assert individuals.due == D(2026, 5, 9)


def test_499_affected_sends_hhs_notice_after_the_year_end() -> None:
    _, hhs, _ = deadlines(D(2026, 3, 10), 499)

    assert hhs.due == D(2027, 3, 1)


def test_500_affected_sends_hhs_notice_within_60_days() -> None:
    _, hhs, _ = deadlines(D(2026, 3, 10), 500)

    assert hhs.due == D(2026, 5, 9)


def test_501_affected_sends_hhs_notice_within_60_days() -> None:
    _, hhs, _ = deadlines(D(2026, 3, 10), 501)

    assert hhs.due == D(2026, 5, 9)


def test_500_residents_of_one_state_need_no_media_notice() -> None:
    _, _, media = deadlines(D(2026, 3, 10), 900, {"CA": 500, "NV": 400})

    assert media.required is False
    assert media.due is None


def test_501_residents_of_one_state_need_media_notice_within_60_days() -> None:
    _, _, media = deadlines(D(2026, 3, 10), 901, {"CA": 501, "NV": 400})

    assert media.required is True
    assert media.due == D(2026, 5, 9)
    assert media.states == ("CA",)


def test_media_rule_counts_states_separately_not_in_total() -> None:
    _, _, media = deadlines(D(2026, 3, 10), 1500, {"CA": 300, "NV": 300, "OR": 300})

    assert media.required is False


def test_discovery_on_31_december_under_500_is_due_1_march() -> None:
    _, hhs, _ = deadlines(D(2026, 12, 31), 10)

    assert hhs.due == D(2027, 3, 1)


def test_discovery_on_1_january_under_500_waits_for_that_year_end() -> None:
    _, hhs, _ = deadlines(D(2027, 1, 1), 10)

    assert hhs.due == D(2028, 2, 29)


def test_year_end_deadline_lands_on_29_february_before_a_leap_year() -> None:
    assert bd.year_end_deadline(D(2027, 6, 1)) == D(2028, 2, 29)


def test_60_days_crosses_29_february_in_a_leap_year() -> None:
    individuals, _, _ = deadlines(D(2028, 1, 15), 3)

    assert individuals.due == D(2028, 3, 15)


def test_60_days_crosses_28_february_in_a_common_year() -> None:
    individuals, _, _ = deadlines(D(2027, 1, 15), 3)

    assert individuals.due == D(2027, 3, 16)


def test_discovery_on_29_february_counts_60_days_from_there() -> None:
    individuals, _, _ = deadlines(D(2028, 2, 29), 3)

    assert individuals.due == D(2028, 4, 29)


def test_a_datetime_discovery_is_reduced_to_its_date() -> None:
    moment = dt.datetime(2026, 12, 31, 23, 59, tzinfo=dt.UTC)

    individuals, hhs, _ = deadlines(moment, 10)

    assert individuals.due == D(2027, 3, 1)
    assert hhs.due == D(2027, 3, 1)


def test_nobody_affected_requires_no_notice() -> None:
    individuals, hhs, media = deadlines(D(2026, 3, 10), 0)

    assert (individuals.required, hhs.required, media.required) == (False,) * 3


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        deadlines(D(2026, 3, 10), -1)


def test_status_is_overdue_the_day_after_the_due_date() -> None:
    individuals, _, _ = deadlines(D(2026, 3, 10), 12)

    status = bd.deadline_status(individuals, today=D(2026, 5, 10), done_on=None)

    assert status == bd.OVERDUE


def test_status_is_due_soon_on_the_due_date() -> None:
    individuals, _, _ = deadlines(D(2026, 3, 10), 12)

    status = bd.deadline_status(individuals, today=D(2026, 5, 9), done_on=None)

    assert status == bd.DUE_SOON


def test_status_records_late_notice() -> None:
    individuals, _, _ = deadlines(D(2026, 3, 10), 12)

    status = bd.deadline_status(
        individuals, today=D(2026, 6, 1), done_on=D(2026, 5, 10)
    )

    assert status == bd.DONE_LATE
