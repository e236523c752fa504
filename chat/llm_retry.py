"""The LLM retry policy and its one loop, shared by complete() and stream().

Retry only connection errors, timeouts, 429 and 5xx, at most LLM_MAX_RETRIES times,
with full-jitter exponential backoff between LLM_RETRY_INITIAL_DELAY_SECONDS and
LLM_RETRY_MAX_DELAY_SECONDS, honouring a Retry-After in seconds or as an HTTP-date.
A Retry-After longer than the maximum delay ends the retries: the server said not
before then, so an earlier retry only burns quota (and the user gets the fallback).
No wait runs past the call's total deadline. An attempt that already handed out
text is never retried (the caller would show it twice): it ends as "stream_cut".
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar

import httpx

from chat.llm_config import CallStats, Hooks, LLMConfig
from chat.llm_errors import RETRYABLE_CODES, LLMError

T = TypeVar("T")


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date).

    Garbage, negative values and dates without a zone give None (use backoff).
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def error_for_status(status: int, headers: httpx.Headers, now: float) -> LLMError:
    """Map a non-200 status to a fixed code (the body is never read)."""
    retry_after = parse_retry_after(headers.get("retry-after"), now=now)
    if status == 429:
        return LLMError(
            "upstream_rate_limited", status_code=status, retry_after=retry_after
        )
    if status >= 500:
        return LLMError("server_error", status_code=status, retry_after=retry_after)
    if status in (401, 403):
        return LLMError("auth_failed", permanent=True, status_code=status)
    if 400 <= status < 500:
        return LLMError("client_error", permanent=True, status_code=status)
    return LLMError("bad_response", permanent=True, status_code=status)


def backoff_delay(attempt: int, config: LLMConfig, rng: random.Random) -> float:
    """Full jitter: uniform between the initial delay and the exponential ceiling."""
    ceiling = min(config.max_delay, config.initial_delay * (2**attempt))
    return rng.uniform(min(config.initial_delay, ceiling), ceiling)


def retry_delay(
    error: LLMError, attempt: int, config: LLMConfig, hooks: Hooks
) -> float | None:
    """The wait before the next attempt, or None when no retry should happen."""
    if error.permanent or error.code not in RETRYABLE_CODES:
        return None
    if attempt >= config.max_retries:
        return None
    if error.retry_after is not None:
        if error.retry_after > config.max_delay:
            return None
        return max(error.retry_after, 0.0)
    return backoff_delay(attempt, config, hooks.rng)


async def with_retries(
    attempt: Callable[[float], AsyncIterator[T]],
    *,
    config: LLMConfig,
    stats: CallStats,
    hooks: Hooks,
    deadline_at: float,
) -> AsyncGenerator[T, None]:
    """Yield what ``attempt(budget)`` yields, retrying failed attempts per the policy.

    ``budget`` is the seconds left before ``deadline_at`` (on ``hooks.clock``). An
    attempt that fails after yielding raises LLMError("stream_cut"); one that fails
    before is retried while the policy and the deadline allow, else its error (or
    LLMError("deadline")) is raised.
    """
    tries = 0
    while True:
        budget = deadline_at - hooks.clock()
        if budget <= 0:
            raise LLMError("deadline")
        stats.upstream_calls += 1
        handed_out = False
        try:
            async for item in attempt(budget):
                handed_out = True
                yield item
            return
        except LLMError as error:
            if handed_out:
                raise LLMError("stream_cut", permanent=True) from None
            delay = retry_delay(error, tries, config, hooks)
            if delay is None:
                raise
            if hooks.clock() + delay >= deadline_at:
                raise LLMError("deadline", status_code=error.status_code) from None
            await hooks.sleep(delay)
            tries += 1
            stats.retries = tries


async def before_deadline(loop_deadline: float, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` but no later than ``loop_deadline`` (event-loop time);
    past it, raise LLMError("deadline"). Other timeouts propagate unchanged.

    Used around every network wait of an attempt with the same absolute deadline,
    so the total deadline holds however the waits are split (keep-alive comments,
    a silent server, a slow consumer) without a timeout spanning a ``yield``.
    """
    timeout = asyncio.timeout_at(loop_deadline)
    try:
        async with timeout:
            return await awaitable
    except TimeoutError:
        if timeout.expired():
            raise LLMError("deadline") from None
        raise
