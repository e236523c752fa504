"""A Redis outage (REDIS_URL at a closed local port): rule answers, LLM fallback, no 500.

The per-user message rate check fails open (logged), LLM admission fails closed to
the rules fallback with its notice, and every Redis call gives up quickly.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.load.harness import free_port
from chat import limits, notices
from chat.breaker import FAILURE, Breaker, BreakerConfig, Permit
from chat.models import LLMCall
from stepsync.sharedstate import (
    REDIS_CONNECT_TIMEOUT_SECONDS,
    REDIS_SOCKET_TIMEOUT_SECONDS,
    RedisStore,
    SharedStateUnavailable,
)
from tests.chat import llm_support
from tests.chat.llm_support import UNSURE_TEXT, parse_sse, post_message, send

llm_server = llm_support.llm_server
llm_server_module = llm_support.llm_server_module
llm_on = llm_support.llm_on


def closed_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def redis_down(settings: Any) -> str:
    settings.REDIS_URL = closed_redis_url()
    return str(settings.REDIS_URL)


@pytest.fixture
def token(patient: Any) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=patient).key


def test_during_a_redis_outage_messages_still_get_rule_answers(
    llm_on: Any,
    redis_down: str,
    patient_api: Any,
    conversation: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = post_message(patient_api, conversation.pk, "my steps are not syncing")

    assert response.status_code == 201
    assert response.json()["reply"]["source"] == "rules"
    assert "limits.store_unavailable scope=messages" in caplog.text


def test_during_a_redis_outage_the_llm_is_not_called_and_the_fallback_answers(
    llm_on: Any, redis_down: str, patient_api: Any, conversation: Any
) -> None:
    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.status_code == 201
    reply = response.json()["reply"]
    assert (reply["source"], reply["notice"]) == ("fallback", notices.FALLBACK_NOTICE)
    assert llm_on.calls == 0
    assert LLMCall.objects.get().outcome == "state_unavailable"


def test_during_a_redis_outage_a_streamed_message_gets_the_fallback(
    llm_on: Any, redis_down: str, token: str, conversation: Any
) -> None:
    status, _, raw = send(conversation.pk, {"text": UNSURE_TEXT}, token=token)

    events = parse_sse(raw)
    assert status == 200
    assert [name for name, _ in events] == ["delta", "done"]
    assert events[-1][1]["reply"]["source"] == "fallback"
    assert llm_on.calls == 0


def test_an_unreachable_redis_makes_every_store_operation_unavailable() -> None:
    store = RedisStore(closed_redis_url())
    operations = [
        lambda: store.incr_within("k", limit=1, window_seconds=60, now=0.0),
        lambda: store.decr("k"),
        lambda: store.read("k"),
        lambda: store.compare_and_set("k", expected_version=0, value="{}"),
    ]

    for operation in operations:
        with pytest.raises(SharedStateUnavailable, match="shared_state_unavailable"):
            operation()


def test_redis_calls_time_out_quickly() -> None:
    store = RedisStore(closed_redis_url())

    kwargs = store.client.connection_pool.connection_kwargs

    assert kwargs["socket_connect_timeout"] == REDIS_CONNECT_TIMEOUT_SECONDS <= 0.25
    assert kwargs["socket_timeout"] == REDIS_SOCKET_TIMEOUT_SECONDS <= 0.5


def test_the_message_rate_check_fails_open_when_the_store_is_unreachable(
    settings: Any,
) -> None:
    settings.RATE_LIMIT_MESSAGES_PER_MINUTE = 1
    store = RedisStore(closed_redis_url())

    for _ in range(3):
        limits.message_rate_check(user_id=1, store=store, now=0.0)


def test_llm_admission_fails_closed_when_the_store_is_unreachable() -> None:
    store = RedisStore(closed_redis_url())

    with pytest.raises(SharedStateUnavailable):
        limits.llm_slot_acquire(user_id=1, store=store, now=0.0)


def test_releasing_a_slot_on_an_unreachable_store_does_not_raise() -> None:
    store = RedisStore(closed_redis_url())

    limits.llm_slot_release(limits.LLMSlot(1, "rl:llm:inflight:u1"), store=store)


def test_the_breaker_refuses_and_records_quietly_when_its_store_is_unreachable() -> (
    None
):
    b = Breaker("llm", config=BreakerConfig(), store=RedisStore(closed_redis_url()))

    with pytest.raises(SharedStateUnavailable):
        b.allow()
    assert b.record(Permit("llm", "closed"), outcome=FAILURE) == ""
