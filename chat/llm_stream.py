"""Streaming chat completions (server-sent events) on the client of chat.llm.

``stream()`` yields reply text as it arrives. Retries follow chat.llm_retry's policy
but only before the first piece was handed out; after that a failure raises
LLMError("stream_cut") and the caller must not store the partial text as complete.

Two limits hold however the server behaves: the total deadline (every network wait
of an attempt ends at the same absolute time, so keep-alive comments or a silent
server cannot stretch it) and the size cap (bytes are counted as they arrive, before
any line is assembled, so one endless line cannot grow memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx

from chat.llm import request_body, request_headers, take_usage
from chat.llm_client import client_scope
from chat.llm_config import CallStats, Hooks, LLMConfig, check_base_url
from chat.llm_errors import TRANSPORT_ERRORS, LLMError, error_for_exception
from chat.llm_retry import before_deadline, error_for_status, with_retries


def _bad() -> LLMError:
    return LLMError("bad_response", permanent=True)


def parse_stream_event(data: str, stats: CallStats) -> str | None:
    """Text of one SSE ``data:`` payload ("" when it has none); None for [DONE].

    Raises LLMError("bad_response") for anything but the expected shape.
    """
    if data == "[DONE]":
        return None
    try:
        doc: Any = json.loads(data)
    except (ValueError, RecursionError):
        raise _bad() from None
    if not isinstance(doc, dict):
        raise _bad()
    choices = doc.get("choices") or []
    if not isinstance(choices, list):
        raise _bad()
    first = choices[0] if choices else {}
    delta = (first.get("delta") or {}) if isinstance(first, dict) else None
    if not isinstance(delta, dict):
        raise _bad()
    extra = doc.get("x_groq")
    usage = doc.get("usage") or (
        extra.get("usage") if isinstance(extra, dict) else None
    )
    take_usage(usage, stats)
    content = delta.get("content")
    if content is None:
        return ""
    if not isinstance(content, str):
        raise _bad()
    return content


class SSEReader:
    """``data:`` payloads of an SSE body, counting bytes as they arrive."""

    def __init__(self, response: httpx.Response, max_bytes: int) -> None:
        self._chunks = response.aiter_bytes().__aiter__()
        self._buffer = bytearray()
        self._total = 0
        self._max_bytes = max_bytes
        self._eof = False

    async def _line(self) -> bytes | None:
        while True:
            cut = self._buffer.find(b"\n")
            if cut >= 0:
                line = bytes(self._buffer[:cut])
                del self._buffer[: cut + 1]
                return line.rstrip(b"\r")
            if self._eof:
                line, self._buffer = bytes(self._buffer), bytearray()
                return line or None
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                self._eof = True
                continue
            self._total += len(chunk)
            if self._total > self._max_bytes:
                raise LLMError("response_too_large", permanent=True)
            self._buffer += chunk

    async def next_data(self) -> str | None:
        """The next ``data:`` payload (comments and other fields skipped); None at
        the end of the body."""
        while True:
            line = await self._line()
            if line is None:
                return None
            if line.startswith(b"data:"):
                try:
                    return line[5:].strip().decode("utf-8")
                except UnicodeDecodeError:
                    raise _bad() from None


async def stream(
    messages: list[dict[str, str]],
    *,
    config: LLMConfig | None = None,
    client: httpx.AsyncClient | None = None,
    hooks: Hooks | None = None,
    stats: CallStats | None = None,
) -> AsyncGenerator[str, None]:
    """Yield the reply's text pieces as they arrive (SSE), capped at the reply size.

    Retries (same policy as ``complete``) happen only before the first piece; a
    failure after it raises LLMError("stream_cut") — the caller must not store the
    partial text as a complete answer. Ends normally at ``data: [DONE]``. Close it
    (``contextlib.aclosing``) to free the connection when stopping early.
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
        pieces = with_retries(
            lambda budget: _attempt(
                the_client, messages, config, stats, hooks, budget, deadline_at
            ),
            config=config,
            stats=stats,
            hooks=hooks,
            deadline_at=deadline_at,
        )
        shown = 0
        try:
            async for piece in pieces:
                if stats.ttft_ms is None:
                    stats.ttft_ms = int((hooks.clock() - started) * 1000)
                room = config.max_reply_chars - shown
                if len(piece) >= room:
                    stats.truncated = True
                    yield piece[:room]
                    return
                shown += len(piece)
                yield piece
        finally:
            await pieces.aclose()
            stats.latency_ms = int(max(0.0, hooks.clock() - started) * 1000)


async def _attempt(
    client: httpx.AsyncClient,
    messages: list[dict[str, str]],
    config: LLMConfig,
    stats: CallStats,
    hooks: Hooks,
    budget: float,
    deadline_at: float,
) -> AsyncIterator[str]:
    """One upstream streaming call: non-empty text pieces until [DONE]; a stream
    with no text at all is a bad response (as an empty completion is)."""
    loop_deadline = asyncio.get_running_loop().time() + budget
    request = client.stream(
        "POST",
        config.request_url,
        json=request_body(messages, config, stream=True),
        headers=request_headers(config, stream=True),
        timeout=httpx.Timeout(min(config.timeout, budget)),
    )
    done = any_text = False
    try:
        async with contextlib.AsyncExitStack() as stack:
            response = await before_deadline(
                loop_deadline, stack.enter_async_context(request)
            )
            stats.status_code = response.status_code
            if response.status_code != 200:
                raise error_for_status(
                    response.status_code, response.headers, hooks.wall()
                )
            if "text/event-stream" not in response.headers.get("content-type", ""):
                raise _bad()
            reader = SSEReader(response, config.max_response_bytes)
            while not done:
                data = await before_deadline(loop_deadline, reader.next_data())
                if data is None:
                    break
                if hooks.clock() >= deadline_at:
                    raise LLMError("deadline")
                piece = parse_stream_event(data, stats)
                if piece is None:
                    done = True
                elif piece:
                    any_text = True
                    yield piece
    except LLMError:
        raise
    except TimeoutError:
        raise LLMError("timeout") from None
    except TRANSPORT_ERRORS as exc:
        raise error_for_exception(exc) from None
    if not done:
        raise LLMError("protocol_error")
    if not any_text:
        raise _bad()
