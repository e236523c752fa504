"""Streaming (SSE) from the LLM client: pieces, retries before the first, cuts after."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chat import llm, llm_stream
from tests.chat import llm_support
from tests.chat.llm_support import MESSAGES, FakeTime, config_for, run_with_client
from tests.llm_server import DEFAULT_TEXT, Fault

llm_server = llm_support.llm_server
llm_server_module = llm_support.llm_server_module


def stream(
    config: llm.LLMConfig, fake: FakeTime | None = None
) -> tuple[list[str], llm.LLMError | None, llm.CallStats]:
    fake = fake or FakeTime()
    stats = llm.CallStats()
    pieces: list[str] = []

    async def action(client: Any) -> Any:
        try:
            async for piece in llm_stream.stream(
                MESSAGES, config=config, client=client, hooks=fake.hooks(), stats=stats
            ):
                pieces.append(piece)
        except llm.LLMError as error:
            return error
        return None

    error = run_with_client(config, action)
    return pieces, error, stats


def test_a_stream_yields_the_whole_reply_in_pieces(llm_server: Any) -> None:
    pieces, error, stats = stream(config_for(llm_server.base_url))

    assert error is None
    assert "".join(pieces) == DEFAULT_TEXT
    assert len(pieces) > 1
    assert stats.ttft_ms is not None
    assert (stats.tokens_in, stats.tokens_out) == (42, 17)
    assert llm_server.requests[0]["body"]["stream"] is True


def test_a_stream_cut_after_text_raises_stream_cut_without_retry(
    llm_server: Any,
) -> None:
    llm_server.set_default(Fault("cut_stream"))

    pieces, error, stats = stream(config_for(llm_server.base_url))

    assert pieces
    assert "".join(pieces) != DEFAULT_TEXT
    assert error is not None
    assert error.code == "stream_cut"
    assert stats.upstream_calls == 1


def test_a_stream_failing_before_text_is_retried(llm_server: Any) -> None:
    llm_server.push(Fault("status", status=503), Fault("reset"))

    pieces, error, stats = stream(config_for(llm_server.base_url))

    assert error is None
    assert "".join(pieces) == DEFAULT_TEXT
    assert (stats.upstream_calls, stats.retries) == (3, 2)


def test_a_stream_429_storm_stops_after_the_retry_budget(llm_server: Any) -> None:
    llm_server.set_default(Fault("status", status=429, headers={"Retry-After": "1"}))

    pieces, error, stats = stream(config_for(llm_server.base_url))

    assert pieces == []
    assert error is not None
    assert error.code == "upstream_rate_limited"
    assert stats.upstream_calls == 3


def test_a_stream_longer_than_the_reply_cap_is_cut_there(llm_server: Any) -> None:
    llm_server.set_default(Fault(content="z" * 500, chunks=10))

    pieces, error, stats = stream(config_for(llm_server.base_url, max_reply_chars=120))

    assert error is None
    assert "".join(pieces) == "z" * 120
    assert stats.truncated is True


def test_a_stream_with_a_wrong_shaped_event_is_a_bad_response(llm_server: Any) -> None:
    llm_server.set_default(Fault("json", body={"choices": "nope"}))

    pieces, error, _ = stream(config_for(llm_server.base_url))

    assert pieces == []
    assert error is not None
    assert error.code == "bad_response"
    assert llm_server.calls == 1


def test_keep_alive_comments_cannot_hold_a_stream_past_its_deadline(
    llm_server: Any,
) -> None:
    llm_server.set_default(Fault("keepalive", chunks=2000, chunk_delay=0.05))
    config = config_for(llm_server.base_url, deadline=0.5, timeout=5.0)

    async def action(client: Any) -> Any:
        async with asyncio.timeout(20):  # a guard against hanging, not the check
            try:
                async for _ in llm_stream.stream(
                    MESSAGES, config=config, client=client
                ):
                    pass
            except llm.LLMError as error:
                return error
        return None

    error = run_with_client(config, action)

    assert error is not None
    assert error.code == "deadline"
    assert llm_server.calls == 1


def test_an_endless_line_is_refused_at_the_size_cap_without_waiting_for_its_end(
    llm_server: Any,
) -> None:
    llm_server.set_default(Fault("long_line", size=2_000_000, hold=30.0))

    pieces, error, stats = stream(
        config_for(llm_server.base_url, timeout=5.0, max_response_bytes=65536)
    )

    assert pieces == []
    assert error is not None
    assert error.code == "response_too_large"
    assert stats.upstream_calls == 1


@pytest.mark.parametrize(
    "event",
    [
        {"x_groq": "s", "choices": [{"delta": {"content": "Hi."}}]},
        {"x_groq": {"usage": "many"}, "choices": [{"delta": {"content": "Hi."}}]},
    ],
    ids=["str", "odd-usage"],
)
def test_an_odd_vendor_field_in_an_event_is_ignored(
    llm_server: Any, event: dict[str, Any]
) -> None:
    llm_server.set_default(Fault("sse", body=event))

    pieces, error, _ = stream(config_for(llm_server.base_url))

    assert error is None
    assert pieces == ["Hi."]


@pytest.mark.parametrize(
    "payload",
    [
        {"x_groq": "s"},
        "[" * 20000 + "]" * 20000,
        {"choices": [{"delta": "text"}]},
        {"choices": ["text"]},
        [1, 2],
    ],
    ids=["vendor-field-only", "nested-too-deep", "delta-str", "choice-str", "list"],
)
def test_a_stream_with_a_malformed_or_empty_event_is_a_bad_response(
    llm_server: Any, payload: Any
) -> None:
    llm_server.set_default(Fault("sse", body=payload))

    pieces, error, stats = stream(config_for(llm_server.base_url))

    assert pieces == []
    assert error is not None
    assert error.code == "bad_response"
    assert stats.upstream_calls == 1
