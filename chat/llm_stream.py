"""Streaming chat completions (SSE) on the client of chat/llm.py.

``stream()`` yields reply text as it arrives. Retries follow chat.llm's policy but
only before the first piece was handed out; after that a failure raises
LLMError("stream_cut") and the caller must not store the partial text as complete.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx

from chat.llm import (
    TRANSPORT_ERRORS,
    CallStats,
    Hooks,
    LLMConfig,
    LLMError,
    _headers,
    _take_usage,
    check_base_url,
    client_scope,
    error_for_exception,
    error_for_status,
    request_body,
    retry_delay,
)


# --- streaming ------------------------------------------------------------------
def parse_stream_event(data: str, stats: CallStats) -> str | None:
    """Text of one SSE ``data:`` payload; None for [DONE]. Raises bad_response."""
    if data == "[DONE]":
        return None
    try:
        doc = json.loads(data)
        choices = doc.get("choices") or []
        delta = choices[0].get("delta", {}) if choices else {}
    except (ValueError, AttributeError, TypeError, IndexError):
        raise LLMError("bad_response", permanent=True) from None
    usage = doc.get("usage") or (doc.get("x_groq") or {}).get("usage")
    _take_usage(usage, stats)
    content = delta.get("content") if isinstance(delta, dict) else None
    if content is None:
        return ""
    if not isinstance(content, str):
        raise LLMError("bad_response", permanent=True)
    return content


async def _sse_data(response: httpx.Response, config: LLMConfig) -> AsyncIterator[str]:
    total = 0
    async for line in response.aiter_lines():
        total += len(line) + 1
        if total > config.max_response_bytes:
            raise LLMError("response_too_large", permanent=True)
        if line.startswith("data:"):
            yield line[5:].strip()


async def stream(
    messages: list[dict[str, str]],
    *,
    config: LLMConfig | None = None,
    client: httpx.AsyncClient | None = None,
    hooks: Hooks | None = None,
    stats: CallStats | None = None,
) -> AsyncIterator[str]:
    """Yield the reply's text pieces as they arrive (SSE), already capped.

    Retries (same policy as ``complete``) happen only before the first piece; a
    failure after it raises LLMError("stream_cut") — the caller must not store the
    partial text as a complete answer. Ends normally at ``data: [DONE]``.
    """
    config = config or LLMConfig.from_settings()
    hooks = hooks or Hooks()
    stats = stats if stats is not None else CallStats()
    if not config.api_key:
        raise LLMError("not_configured", permanent=True)
    check_base_url(config.base_url)
    started = hooks.clock()
    deadline_at = started + config.deadline
    async with client_scope(config, client, deadline_at, hooks) as the_client:
        try:
            async for piece in _stream_with_retries(
                the_client, messages, config, stats, hooks, started, deadline_at
            ):
                yield piece
        finally:
            stats.latency_ms = int(max(0.0, hooks.clock() - started) * 1000)


async def _stream_with_retries(
    client: httpx.AsyncClient,
    messages: list[dict[str, str]],
    config: LLMConfig,
    stats: CallStats,
    hooks: Hooks,
    started: float,
    deadline_at: float,
) -> AsyncIterator[str]:
    tries = 0
    while True:
        budget = deadline_at - hooks.clock()
        if budget <= 0:
            raise LLMError("deadline")
        stats.upstream_calls += 1
        yielded = 0
        try:
            async for piece in _stream_attempt(
                client, messages, config, stats, hooks, budget, deadline_at
            ):
                if piece:
                    if stats.ttft_ms is None:
                        stats.ttft_ms = int((hooks.clock() - started) * 1000)
                    room = config.max_reply_chars - yielded
                    if len(piece) >= room:
                        stats.truncated = True
                        yield piece[:room]
                        return
                    yielded += len(piece)
                    yield piece
            return
        except LLMError as error:
            if yielded:
                raise LLMError("stream_cut", permanent=True) from None
            delay = retry_delay(error, tries, config, hooks)
            if delay is None:
                raise
            if hooks.clock() + delay >= deadline_at:
                raise LLMError("deadline", status_code=error.status_code) from None
            stats.delays.append(delay)
            await hooks.sleep(delay)
            tries += 1
            stats.retries = tries


async def _stream_attempt(
    client: httpx.AsyncClient,
    messages: list[dict[str, str]],
    config: LLMConfig,
    stats: CallStats,
    hooks: Hooks,
    budget: float,
    deadline_at: float,
) -> AsyncIterator[str]:
    timeout = httpx.Timeout(min(config.timeout, budget))
    body = request_body(messages, config, stream=True)
    done = False
    try:
        async with client.stream(
            "POST",
            config.url,
            json=body,
            headers=_headers(config, stream=True),
            timeout=timeout,
        ) as response:
            stats.status_code = response.status_code
            if response.status_code != 200:
                raise error_for_status(
                    response.status_code, response.headers, hooks.wall()
                )
            if "text/event-stream" not in response.headers.get("content-type", ""):
                raise LLMError("bad_response", permanent=True)
            async for data in _sse_data(response, config):
                if hooks.clock() >= deadline_at:
                    raise LLMError("deadline")
                piece = parse_stream_event(data, stats)
                if piece is None:
                    done = True
                    break
                yield piece
    except LLMError:
        raise
    except TimeoutError:
        raise LLMError("timeout") from None
    except TRANSPORT_ERRORS as exc:
        raise error_for_exception(exc) from None
    if not done:
        raise LLMError("protocol_error")
