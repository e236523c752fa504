"""Faults around the LLM call: clients leaving, unexpected errors, a failing phase 3.

Each test checks what the user gets and that the per-user in-flight slot and a
half-open trial slot are released exactly once, whatever ended the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import DatabaseError
from django.test import AsyncClient

from chat import breaker, limits, notices
from chat.models import LLMCall
from tests.chat import llm_support
from tests.chat.llm_support import UNSURE_TEXT, parse_sse, post_message, send
from tests.llm_server import Fault

llm_server = llm_support.llm_server
llm_server_module = llm_support.llm_server_module
llm_on = llm_support.llm_on

SLOW_STORY = Fault(
    content="One. Two. Three. Four. Five. Six. Seven. Eight.",
    chunks=16,
    chunk_delay=0.3,
)


@pytest.fixture
def token(patient: Any) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=patient).key


def in_flight(user_id: int) -> int:
    from stepsync.models import SharedState

    row = SharedState.objects.filter(key=f"rl:llm:inflight:u{user_id}").first()
    return 0 if row is None else int(row.n)


def half_open() -> None:
    breaker.get_breaker().set_state(breaker.HALF_OPEN, reason="test")


def trial_slot_free() -> bool:
    try:
        breaker.get_breaker().allow()
    except breaker.BreakerRejected:
        return False
    return True


def leave_after_first_delta(conversation_id: int, token: str, accept: str) -> None:
    """Post, then cancel the request once it is under way (as ASGI does when the
    client disconnects): after the first SSE chunk, or once the LLM was called."""

    async def main() -> None:
        client = AsyncClient()
        under_way = asyncio.Event()

        async def consume() -> None:
            response = await client.post(
                f"/api/conversations/{conversation_id}/messages/",
                data=json.dumps({"text": UNSURE_TEXT}),
                content_type="application/json",
                headers={"Accept": accept, "Authorization": f"Token {token}"},
            )
            async for _chunk in response.streaming_content:
                under_way.set()

        task = asyncio.create_task(consume())
        async with asyncio.timeout(20):
            await under_way.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async_to_sync(main)()


def cancel_once_called(
    conversation_id: int, token: str, server: Any, accept: str
) -> None:
    async def main() -> None:
        client = AsyncClient()
        task = asyncio.create_task(
            client.post(
                f"/api/conversations/{conversation_id}/messages/",
                data=json.dumps({"text": UNSURE_TEXT}),
                content_type="application/json",
                headers={"Accept": accept, "Authorization": f"Token {token}"},
            )
        )
        async with asyncio.timeout(20):
            while server.calls == 0:
                await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async_to_sync(main)()


def test_users_leaving_mid_stream_never_open_the_breaker(
    llm_on: Any, token: str, conversation: Any
) -> None:
    llm_on.set_default(SLOW_STORY)

    for _ in range(6):
        leave_after_first_delta(conversation.pk, token, "text/event-stream")

    assert breaker.breaker_snapshot().state == "closed"
    assert breaker.breaker_snapshot().consecutive_failures == 0
    outcomes = list(LLMCall.objects.values_list("outcome", flat=True))
    assert outcomes == ["client_disconnected"] * 6
    assert in_flight(conversation.user_id) == 0


def test_a_stream_left_in_half_open_frees_the_trial_slot(
    llm_on: Any, token: str, conversation: Any
) -> None:
    llm_on.set_default(SLOW_STORY)
    half_open()

    leave_after_first_delta(conversation.pk, token, "text/event-stream")

    assert breaker.breaker_snapshot().state == "half_open"
    assert trial_slot_free() is True


def test_a_json_request_cancelled_mid_call_releases_both_slots_at_once(
    llm_on: Any, token: str, conversation: Any
) -> None:
    llm_on.set_default(Fault(delay=3.0))
    half_open()

    cancel_once_called(conversation.pk, token, llm_on, "application/json")

    assert LLMCall.objects.get().outcome == "client_disconnected"
    assert in_flight(conversation.user_id) == 0
    assert trial_slot_free() is True
    reply = conversation.messages.filter(role="assistant").order_by("id").last()
    assert reply.source == "fallback"


def test_the_synchronous_path_cancelled_mid_call_releases_both_slots(
    llm_on: Any, patient: Any, conversation: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat import llm_pipeline, services

    async def cancelled(*args: Any, **kwargs: Any) -> Any:
        raise asyncio.CancelledError

    monkeypatch.setattr(llm_pipeline, "call_complete", cancelled)
    half_open()

    with pytest.raises(asyncio.CancelledError):
        services.message_send(user=patient, conversation=conversation, text=UNSURE_TEXT)

    assert LLMCall.objects.get().outcome == "client_disconnected"
    assert in_flight(conversation.user_id) == 0
    assert trial_slot_free() is True


def test_an_unexpected_error_in_the_call_gives_the_fallback_and_frees_both_slots(
    llm_on: Any,
    patient_api: Any,
    conversation: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from chat import llm

    def broken(*args: Any, **kwargs: Any) -> str:
        raise KeyError("unexpected")

    monkeypatch.setattr(llm, "parse_completion", broken)
    half_open()

    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.status_code == 201
    reply = response.json()["reply"]
    assert (reply["source"], reply["notice"]) == ("fallback", notices.FALLBACK_NOTICE)
    assert LLMCall.objects.get().outcome == "internal"
    assert in_flight(conversation.user_id) == 0
    assert trial_slot_free() is True
    assert "llm.call_unexpected_error" in caplog.text


def test_an_unexpected_error_in_a_stream_gives_the_fallback_and_frees_both_slots(
    llm_on: Any,
    token: str,
    conversation: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from chat import llm_stream

    def broken(*args: Any, **kwargs: Any) -> str:
        raise AttributeError("unexpected")

    monkeypatch.setattr(llm_stream, "parse_stream_event", broken)
    half_open()

    _, _, raw = send(conversation.pk, {"text": UNSURE_TEXT}, token=token)

    events = parse_sse(raw)
    assert [name for name, _ in events] == ["delta", "done"]
    assert events[-1][1]["reply"]["source"] == "fallback"
    assert LLMCall.objects.get().outcome == "internal"
    assert in_flight(conversation.user_id) == 0
    assert trial_slot_free() is True
    assert "llm.stream_unexpected_error" in caplog.text


def test_json_nested_too_deeply_gets_the_fallback_through_the_api(
    llm_on: Any, patient_api: Any, conversation: Any
) -> None:
    llm_on.set_default(Fault("json", body=b"[" * 20000 + b"]" * 20000))

    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.status_code == 201
    assert response.json()["reply"]["source"] == "fallback"
    assert LLMCall.objects.get().outcome == "bad_response"


def test_an_odd_vendor_field_in_a_stream_gets_the_fallback_not_a_crash(
    llm_on: Any, token: str, conversation: Any
) -> None:
    llm_on.set_default(Fault("sse", body={"x_groq": "s"}))

    _, _, raw = send(conversation.pk, {"text": UNSURE_TEXT}, token=token)

    events = parse_sse(raw)
    assert events[-1][1]["reply"]["source"] == "fallback"
    assert LLMCall.objects.get().outcome == "bad_response"


def test_when_storing_a_streamed_reply_fails_phase_three_runs_once(
    llm_on: Any,
    token: str,
    conversation: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from chat import services

    def failing(**kwargs: Any) -> Any:
        raise DatabaseError("disk full")

    other_call = limits.llm_slot_acquire(user_id=conversation.user_id)
    monkeypatch.setattr(services, "message_turn_finish", failing)

    _, _, raw = send(conversation.pk, {"text": UNSURE_TEXT}, token=token)

    events = parse_sse(raw)
    assert events[-1][0] == "error"
    assert "done" not in [name for name, _ in events]
    assert LLMCall.objects.count() == 1
    assert in_flight(conversation.user_id) == 1
    assert "llm.stream_finish_failed" in caplog.text
    limits.llm_slot_release(other_call)


def test_when_storing_a_json_reply_fails_the_answer_is_503_and_phase_three_ran_once(
    llm_on: Any,
    token: str,
    conversation: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chat import services

    def failing(**kwargs: Any) -> Any:
        raise DatabaseError("disk full")

    monkeypatch.setattr(services, "message_turn_finish", failing)

    status, _, raw = send(
        conversation.pk, {"text": UNSURE_TEXT}, token=token, accept="application/json"
    )

    assert status == 503
    assert json.loads(raw)["error"]
    assert "disk full" not in raw.decode()
    assert LLMCall.objects.count() == 1
    assert in_flight(conversation.user_id) == 0
