"""The shared circuit breaker, driven by an injected clock, on both state backends."""

from __future__ import annotations

from typing import Any

import pytest

from chat import breaker
from chat.breaker import Breaker, BreakerConfig, BreakerRejected
from tests.chat import llm_support
from tests.chat.llm_support import Clock

store = llm_support.store

CONFIG = BreakerConfig(
    failure_threshold=5,
    success_threshold=2,
    open_seconds=60.0,
    window_size=10,
    minimum_calls=10,
    failure_rate_threshold=50.0,
    half_open_max_calls=1,
    probe_lease_seconds=120.0,
)


def make(store: Any, clock: Clock, **overrides: Any) -> Breaker:
    config = BreakerConfig(**{**CONFIG.__dict__, **overrides})
    return Breaker("llm", config=config, store=store, clock=clock)


def fail(b: Breaker, times: int) -> None:
    for _ in range(times):
        b.record(b.allow(), outcome=breaker.FAILURE)


def transitions() -> list[tuple[str, str, str]]:
    from chat.models import BreakerTransition

    rows = BreakerTransition.objects.order_by("id")
    return [(r.from_state, r.to_state, r.reason) for r in rows]


def test_it_opens_after_the_consecutive_failure_threshold(store: Any) -> None:
    clock = Clock()
    b = make(store, clock)

    fail(b, 4)
    assert b.snapshot().state == "closed"
    fail(b, 1)

    snap = b.snapshot()
    assert snap.state == "open"
    assert snap.consecutive_failures == 5
    assert snap.next_attempt_at is not None
    assert snap.next_attempt_at.timestamp() == clock.now + 60
    assert transitions() == [("closed", "open", "consecutive_failures")]


def test_an_open_breaker_fails_fast_until_its_timeout(store: Any) -> None:
    clock = Clock()
    b = make(store, clock)
    fail(b, 5)

    clock.advance(59)
    with pytest.raises(BreakerRejected) as rejected:
        b.allow()

    assert rejected.value.code == "breaker_open"
    assert rejected.value.next_attempt_at == clock.now + 1


def test_half_open_admits_one_trial_call_at_a_time(store: Any) -> None:
    clock = Clock()
    b = make(store, clock)
    fail(b, 5)
    clock.advance(60)

    probe = b.allow()
    with pytest.raises(BreakerRejected):
        b.allow()

    assert probe.state == "half_open"
    assert probe.probe_id
    assert b.snapshot().state == "half_open"


def test_successful_trials_close_it_after_the_success_threshold(store: Any) -> None:
    clock = Clock()
    b = make(store, clock)
    fail(b, 5)
    clock.advance(60)

    b.record(b.allow(), outcome=breaker.SUCCESS)
    assert b.snapshot().state == "half_open"
    b.record(b.allow(), outcome=breaker.SUCCESS)

    assert b.snapshot().state == "closed"
    assert b.snapshot().consecutive_failures == 0
    assert [t[1] for t in transitions()] == ["open", "half_open", "closed"]


def test_a_failed_trial_opens_it_again(store: Any) -> None:
    clock = Clock()
    b = make(store, clock)
    fail(b, 5)
    clock.advance(60)

    b.record(b.allow(), outcome=breaker.FAILURE)

    assert b.snapshot().state == "open"
    assert transitions()[-1] == ("half_open", "open", "probe_failed")
    with pytest.raises(BreakerRejected):
        b.allow()


def test_ignored_results_never_count(store: Any) -> None:
    b = make(store, Clock())

    for _ in range(20):
        b.record(b.allow(), outcome=breaker.IGNORED)

    assert b.snapshot().state == "closed"
    assert b.snapshot().consecutive_failures == 0
    assert b.snapshot().calls_in_window == 0


def test_a_success_resets_the_consecutive_count(store: Any) -> None:
    b = make(store, Clock(), minimum_calls=100)

    fail(b, 4)
    b.record(b.allow(), outcome=breaker.SUCCESS)
    fail(b, 4)

    assert b.snapshot().state == "closed"
    assert b.snapshot().consecutive_failures == 4


def test_a_success_on_a_healthy_breaker_writes_nothing(store: Any) -> None:
    b = make(store, Clock())
    for _ in range(CONFIG.window_size):
        b.record(b.allow(), outcome=breaker.SUCCESS)
    version = store.read(b.key).version

    b.record(b.allow(), outcome=breaker.SUCCESS)

    assert store.read(b.key).version == version
    assert b.snapshot().calls_in_window == CONFIG.window_size


def test_a_failure_after_a_run_of_successes_is_still_counted(store: Any) -> None:
    b = make(store, Clock())
    for _ in range(CONFIG.window_size + 3):
        b.record(b.allow(), outcome=breaker.SUCCESS)

    fail(b, 1)

    assert b.snapshot().consecutive_failures == 1
    assert b.snapshot().failure_rate == 10.0


def test_the_failure_rate_over_the_window_opens_it(store: Any) -> None:
    b = make(store, Clock())

    for _ in range(5):
        b.record(b.allow(), outcome=breaker.SUCCESS)
        b.record(b.allow(), outcome=breaker.FAILURE)

    assert b.snapshot().state == "open"
    assert transitions() == [("closed", "open", "failure_rate")]


def test_the_failure_rate_needs_the_minimum_number_of_calls(store: Any) -> None:
    b = make(store, Clock())

    for _ in range(4):
        b.record(b.allow(), outcome=breaker.SUCCESS)
        b.record(b.allow(), outcome=breaker.FAILURE)

    assert b.snapshot().state == "closed"
    assert b.snapshot().failure_rate == 50.0
    assert b.snapshot().calls_in_window == 8


def test_slow_successes_count_as_failures(store: Any) -> None:
    b = make(store, Clock(), slow_call_seconds=2.0)

    for _ in range(5):
        b.record(b.allow(), outcome=breaker.SUCCESS, duration=3.0)

    assert b.snapshot().state == "open"


def test_a_trial_that_never_reports_frees_its_slot_after_the_lease(store: Any) -> None:
    clock = Clock()
    b = make(store, clock)
    fail(b, 5)
    clock.advance(60)
    b.allow()

    clock.advance(121)

    assert b.allow().state == "half_open"


def test_results_of_calls_admitted_before_opening_do_not_move_it(store: Any) -> None:
    clock = Clock()
    b = make(store, clock)
    early = b.allow()
    fail(b, 5)
    clock.advance(60)
    b.allow()

    b.record(early, outcome=breaker.SUCCESS)

    assert b.snapshot().state == "half_open"


def test_forced_open_rejects_until_reset_and_is_audited(
    store: Any, staff_member: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.chat.conftest import audit_rows

    b = make(store, Clock())
    monkeypatch.setattr(breaker, "get_breaker", lambda name="llm": b)

    breaker.breaker_force_open(actor=staff_member, reason="Provider incident")
    with pytest.raises(BreakerRejected):
        b.allow()
    breaker.breaker_reset(actor=staff_member, reason="")

    assert b.allow().state == "closed"
    rows = breaker.breaker_transitions()
    assert [(r.to_state, r.reason) for r in rows] == [
        ("closed", "operator_reset"),
        ("forced_open", "provider_incident"),
    ]
    assert all(r.actor_id == staff_member.pk for r in rows)
    assert len(audit_rows("BREAKER_ACTION")) == 2


def test_disabled_admits_everything_and_counts_nothing(
    store: Any, staff_member: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = make(store, Clock())
    monkeypatch.setattr(breaker, "get_breaker", lambda name="llm": b)
    breaker.breaker_disable(actor=staff_member, reason="maintenance")

    fail(b, 10)

    assert b.snapshot().state == "disabled"
    breaker.breaker_force_close(actor=staff_member, reason="done")
    assert b.snapshot().state == "closed"


def test_system_transitions_are_audited_with_counts_only(store: Any) -> None:
    from tests.chat.conftest import audit_rows

    fail(make(store, Clock()), 5)

    rows = audit_rows("BREAKER_TRANSITION")
    assert len(rows) == 1
    assert rows[0].system_principal == "breaker"
    assert rows[0].details["to_state"] == "open"
    assert rows[0].details["consecutive_failures"] == 5


def test_two_breakers_on_one_store_share_the_state(store: Any) -> None:
    clock = Clock()
    first, second = make(store, clock), make(store, clock)

    fail(first, 5)

    with pytest.raises(BreakerRejected):
        second.allow()
