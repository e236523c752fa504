"""Rate limits on both shared-state backends: exact counts, windows, refunds, threads."""

from __future__ import annotations

from typing import Any

import pytest

from chat import limits
from chat.limits import RateLimited
from tests.chat import llm_support

store = llm_support.store

NOW = 1_800_000_000.0


@pytest.fixture
def small_limits(settings: Any) -> Any:
    settings.RATE_LIMIT_MESSAGES_PER_MINUTE = 3
    settings.RATE_LIMIT_CALLS_PER_USER_HOUR = 4
    settings.RATE_LIMIT_CALLS_PER_HOUR = 6
    settings.LLM_MAX_CONCURRENT_PER_USER = 2
    return settings


def test_messages_past_the_per_minute_limit_are_refused_with_retry_after(
    store: Any, small_limits: Any
) -> None:
    for second in range(3):
        limits.message_rate_check(user_id=1, store=store, now=NOW + second)

    with pytest.raises(RateLimited) as refused:
        limits.message_rate_check(user_id=1, store=store, now=NOW + 10)

    assert refused.value.scope == "messages"
    low = 49 if isinstance(store, limits_db_store()) else 1
    assert low <= refused.value.retry_after <= 60
    assert refused.value.payload()["error"] == "rate_limited"


def test_the_message_window_restarts_after_a_minute(
    store: Any, small_limits: Any
) -> None:
    if not isinstance(store, limits_db_store()):
        pytest.skip("Redis expires keys on its own clock; covered by the TTL")
    for _ in range(3):
        limits.message_rate_check(user_id=1, store=store, now=NOW)

    limits.message_rate_check(user_id=1, store=store, now=NOW + 61)


def limits_db_store() -> type:
    from stepsync.sharedstate import DatabaseStore

    return DatabaseStore


def test_a_clock_that_went_back_does_not_freeze_the_window(
    store: Any, small_limits: Any
) -> None:
    if not isinstance(store, limits_db_store()):
        pytest.skip("Redis windows run on Redis's clock")
    for _ in range(3):
        limits.message_rate_check(user_id=1, store=store, now=NOW)

    limits.message_rate_check(user_id=1, store=store, now=NOW - 86400)


def test_users_have_separate_message_buckets(store: Any, small_limits: Any) -> None:
    for _ in range(3):
        limits.message_rate_check(user_id=1, store=store, now=NOW)

    limits.message_rate_check(user_id=2, store=store, now=NOW)


def test_in_flight_llm_calls_are_capped_per_user(store: Any, small_limits: Any) -> None:
    first = limits.llm_slot_acquire(user_id=1, store=store, now=NOW)
    limits.llm_slot_acquire(user_id=1, store=store, now=NOW)

    with pytest.raises(RateLimited) as refused:
        limits.llm_slot_acquire(user_id=1, store=store, now=NOW)
    limits.llm_slot_release(first, store=store)

    assert refused.value.scope == "concurrent"
    limits.llm_slot_acquire(user_id=1, store=store, now=NOW)


def test_the_per_user_hourly_llm_limit_refuses_the_next_call(
    store: Any, small_limits: Any
) -> None:
    for _ in range(4):
        limits.llm_slot_release(
            limits.llm_slot_acquire(user_id=1, store=store, now=NOW), store=store
        )

    with pytest.raises(RateLimited) as refused:
        limits.llm_slot_acquire(user_id=1, store=store, now=NOW)

    assert refused.value.scope == "user_hour"
    assert 3500 <= refused.value.retry_after <= 3600


def test_the_global_hourly_limit_refunds_the_users_count(
    store: Any, small_limits: Any
) -> None:
    for user_id in (1, 1, 2, 2, 3, 3):
        limits.llm_slot_release(
            limits.llm_slot_acquire(user_id=user_id, store=store, now=NOW),
            store=store,
        )

    with pytest.raises(RateLimited) as refused:
        limits.llm_slot_acquire(user_id=4, store=store, now=NOW)
    small_limits.RATE_LIMIT_CALLS_PER_HOUR = 100

    assert refused.value.scope == "global_hour"
    for _ in range(4):
        limits.llm_slot_release(
            limits.llm_slot_acquire(user_id=4, store=store, now=NOW), store=store
        )


def test_a_limit_refusal_is_a_chat_error_with_status_429() -> None:
    from chat.exceptions import ChatError

    refused = RateLimited("messages", 12)

    assert isinstance(refused, ChatError)
    assert (refused.status_code, refused.retry_after) == (429, 12)
