"""OpenAI-compatible chat completions: the project's only outbound HTTP (non-streamed).

``complete()`` sends an already-sanitized prompt and returns one validated, capped
reply; ``chat.llm_stream.stream()`` is its streaming twin. Both run the retry policy
of chat.llm_retry on the client of chat.llm_client, never past LLM_DEADLINE_SECONDS.
Every failure is an ``LLMError`` with a fixed code (chat.llm_errors); response bodies,
URLs and the API key never appear in errors or logs.

This module also re-exports the names callers use (``LLMError``, ``LLMConfig``,
``CallStats``, ``Hooks``, ``llm_enabled``, ``check_base_url``, ``build_client``), so
``chat.llm`` stays the one entry point to the LLM client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from chat.llm_client import aclose_shared_client, build_client, client_scope
from chat.llm_config import CallStats, Hooks, LLMConfig, check_base_url, llm_enabled
from chat.llm_errors import TRANSPORT_ERRORS, LLMError, error_for_exception
from chat.llm_retry import error_for_status, with_retries

__all__ = [
    "CallStats",
    "Hooks",
    "LLMConfig",
    "LLMError",
    "aclose_shared_client",
    "build_client",
    "check_base_url",
    "complete",
    "llm_enabled",
    "request_body",
    "request_headers",
    "take_usage",
]


def request_body(
    messages: list[dict[str, str]], config: LLMConfig, *, stream: bool
) -> dict[str, Any]:
    """The JSON body sent upstream (messages are already sanitized)."""
    return {
        "model": config.model,
        "messages": messages,
        "max_tokens": config.max_tokens,
        "temperature": config.temperature,
        "stream": stream,
    }


def request_headers(config: LLMConfig, *, stream: bool) -> dict[str, str]:
    """The request headers; the key travels only here."""
    return {
        "Authorization": f"Bearer {config.api_key}",
        "Accept": "text/event-stream" if stream else "application/json",
    }


def take_usage(usage: Any, stats: CallStats) -> None:
    """Copy sane token counts from a ``usage`` object into ``stats``."""
    if not isinstance(usage, dict):
        return
    for key, attr in (
        ("prompt_tokens", "tokens_in"),
        ("completion_tokens", "tokens_out"),
    ):
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            setattr(stats, attr, min(value, 10_000_000))


def parse_completion(body: bytes, config: LLMConfig, stats: CallStats) -> str:
    """Validate a chat-completion body; return the reply text (capped).

    Raises LLMError("bad_response") for anything but the expected shape, including
    JSON nested too deeply to parse (RecursionError).
    """
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise LLMError("bad_response", permanent=True) from None
    try:
        content = doc["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LLMError("bad_response", permanent=True) from None
    if not isinstance(content, str) or not content.strip():
        raise LLMError("bad_response", permanent=True)
    take_usage(doc.get("usage") if isinstance(doc, dict) else None, stats)
    if len(content) > config.max_reply_chars:
        stats.truncated = True
        return content[: config.max_reply_chars]
    return content


async def _read_capped(response: httpx.Response, config: LLMConfig) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > config.max_response_bytes:
            raise LLMError("response_too_large", permanent=True)
    return bytes(body)


async def _attempt(
    client: httpx.AsyncClient,
    messages: list[dict[str, str]],
    config: LLMConfig,
    stats: CallStats,
    hooks: Hooks,
    budget: float,
) -> AsyncIterator[str]:
    """One upstream call; yields the reply once, after the response is closed."""
    deadline = asyncio.timeout(budget)
    try:
        async with (
            deadline,
            client.stream(
                "POST",
                config.request_url,
                json=request_body(messages, config, stream=False),
                headers=request_headers(config, stream=False),
                timeout=httpx.Timeout(min(config.timeout, budget)),
            ) as response,
        ):
            stats.status_code = response.status_code
            if response.status_code != 200:
                raise error_for_status(
                    response.status_code, response.headers, hooks.wall()
                )
            raw = await _read_capped(response, config)
    except LLMError:
        raise
    except TimeoutError:
        raise LLMError("deadline" if deadline.expired() else "timeout") from None
    except TRANSPORT_ERRORS as exc:
        raise error_for_exception(exc) from None
    yield parse_completion(raw, config, stats)


async def complete(
    messages: list[dict[str, str]],
    *,
    config: LLMConfig | None = None,
    client: httpx.AsyncClient | None = None,
    hooks: Hooks | None = None,
    stats: CallStats | None = None,
) -> str:
    """Send an already-sanitized prompt; return the reply text (validated, capped).

    Raises LLMError with a fixed code. ``stats`` (if given) is filled with counts
    and timings. No content is logged.
    """
    config = config or LLMConfig.from_settings()
    hooks = hooks or Hooks()
    stats = stats if stats is not None else CallStats()
    if not config.api_key:
        raise LLMError("not_configured", permanent=True)
    check_base_url(config.base_url)
    started = hooks.clock()
    deadline_at = started + config.deadline
    try:
        async with client_scope(config, client, deadline_at, hooks) as the_client:
            replies = with_retries(
                lambda budget: _attempt(
                    the_client, messages, config, stats, hooks, budget
                ),
                config=config,
                stats=stats,
                hooks=hooks,
                deadline_at=deadline_at,
            )
            try:
                text = await anext(replies)
            finally:
                await replies.aclose()
    finally:
        stats.latency_ms = int(max(0.0, hooks.clock() - started) * 1000)
    stats.ttft_ms = stats.latency_ms
    return text
