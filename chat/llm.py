"""OpenAI-compatible chat-completions client: the only outbound HTTP in the project.

``complete()`` returns one reply; ``stream()`` yields reply text as it arrives (SSE).
Both take an already-sanitized prompt, retry only connection errors, timeouts, 429
and 5xx (at most LLM_MAX_RETRIES times, full-jitter exponential backoff between
LLM_RETRY_INITIAL_DELAY_SECONDS and LLM_RETRY_MAX_DELAY_SECONDS, honouring a
Retry-After in seconds or as an HTTP-date), and never run past LLM_DEADLINE_SECONDS.
A Retry-After longer than the maximum delay ends the retries: the server said not
before then, so an earlier retry only burns quota (and the user gets the fallback).
A stream is retried only before its first text was handed out.

Every failure is an ``LLMError`` with a fixed code; response bodies, URLs and the
API key never appear in errors or logs. TLS verification is always on and
``https://`` is required except for loopback hosts (also a system check).
The transport is httpx on aiohttp (PERFORMANCE.md: httpx's own async pool collapses
above ~100 calls in flight), one client per event loop, and at most
LLM_MAX_IN_FLIGHT calls in flight per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import math
import random
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
RETRYABLE_CODES = frozenset(
    {"connect_error", "timeout", "protocol_error", "rate_limited", "server_error"}
)
# Codes that say nothing about the upstream's health (our request or our key).
NOT_UPSTREAM_FAULTS = frozenset({"client_error", "auth_failed", "not_configured"})


class LLMError(Exception):
    """An LLM call failed; ``code`` is fixed and safe to log, never a body."""

    def __init__(
        self,
        code: str,
        *,
        permanent: bool = False,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.permanent = permanent
        self.status_code = status_code
        self.retry_after = retry_after

    @property
    def counts_against_breaker(self) -> bool:
        """4xx other than 429 (and a missing key) never count as upstream failures."""
        return self.code not in NOT_UPSTREAM_FAULTS


@dataclass(frozen=True)
class LLMConfig:
    """Client settings; ``from_settings()`` reads GROQ_* and LLM_*."""

    base_url: str
    api_key: str
    model: str = "llama-3.3-70b-versatile"
    max_tokens: int = 512
    temperature: float = 0.3
    timeout: float = 20.0
    deadline: float = 45.0
    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_response_bytes: int = 262144
    max_reply_chars: int = 4000
    max_in_flight: int = 64

    @classmethod
    def from_settings(cls) -> LLMConfig:
        return cls(
            base_url=settings.GROQ_API_BASE_URL,
            api_key=settings.GROQ_API_KEY,
            model=settings.GROQ_MODEL,
            max_tokens=settings.LLM_MAX_TOKENS,
            temperature=settings.LLM_TEMPERATURE,
            timeout=settings.LLM_TIMEOUT_SECONDS,
            deadline=settings.LLM_DEADLINE_SECONDS,
            max_retries=settings.LLM_MAX_RETRIES,
            initial_delay=settings.LLM_RETRY_INITIAL_DELAY_SECONDS,
            max_delay=settings.LLM_RETRY_MAX_DELAY_SECONDS,
            max_response_bytes=settings.LLM_MAX_RESPONSE_BYTES,
            max_reply_chars=settings.LLM_MAX_REPLY_CHARS,
            max_in_flight=settings.LLM_MAX_IN_FLIGHT,
        )

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


@dataclass
class CallStats:
    """Figures of one logical call (for the LLMCall record); never content."""

    upstream_calls: int = 0
    retries: int = 0
    status_code: int | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    ttft_ms: int | None = None
    latency_ms: int = 0
    truncated: bool = False
    delays: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Hooks:
    """Injected time and randomness (tests drive them; defaults are real)."""

    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)


def llm_enabled() -> bool:
    """True when an API key is configured (the LLM branch is used at all)."""
    return bool(settings.GROQ_API_KEY)


def check_base_url(url: str) -> None:
    """Raise LLMError("insecure_url") unless https, or http on a loopback host."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return
    raise LLMError("insecure_url", permanent=True)


# --- the per-event-loop client --------------------------------------------------
_clients: weakref.WeakKeyDictionary[Any, tuple[httpx.AsyncClient, asyncio.Semaphore]]
_clients = weakref.WeakKeyDictionary()


def build_client(config: LLMConfig) -> httpx.AsyncClient:
    """An httpx client on the aiohttp transport; TLS verification always on."""
    from httpx_aiohttp import AiohttpTransport

    check_base_url(config.base_url)
    limits = httpx.Limits(
        max_connections=config.max_in_flight,
        max_keepalive_connections=min(config.max_in_flight, 32),
    )
    transport = AiohttpTransport(verify=True, trust_env=False, limits=limits)
    return httpx.AsyncClient(
        transport=transport,
        verify=True,
        trust_env=False,
        timeout=httpx.Timeout(config.timeout),
        follow_redirects=False,
    )


def _shared_client(
    config: LLMConfig,
) -> tuple[httpx.AsyncClient, asyncio.Semaphore] | None:
    """The loop's long-lived client and in-flight gate; None off the main thread.

    The server's event loop runs in the main thread (uvicorn) and lives as long as
    the process. Loops elsewhere (async_to_sync in a worker thread) last one call,
    so those calls get a client of their own, closed when the call ends.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    loop = asyncio.get_running_loop()
    entry = _clients.get(loop)
    if entry is None:
        entry = (build_client(config), asyncio.Semaphore(config.max_in_flight))
        _clients[loop] = entry
    return entry


async def aclose_shared_client() -> None:
    """Close this loop's shared client (tests and shutdown hooks)."""
    entry = _clients.pop(asyncio.get_running_loop(), None)
    if entry is not None:
        await entry[0].aclose()


@contextlib.asynccontextmanager
async def client_scope(
    config: LLMConfig,
    client: httpx.AsyncClient | None,
    deadline_at: float,
    hooks: Hooks,
) -> AsyncIterator[httpx.AsyncClient]:
    """The client for one logical call: the caller's, the shared one behind the
    per-process in-flight cap, or a short-lived one."""
    if client is not None:
        yield client
        return
    shared = _shared_client(config)
    if shared is None:
        async with build_client(config) as own:
            yield own
        return
    async with _gate(shared[1], deadline_at, hooks):
        yield shared[0]


# --- retry policy ---------------------------------------------------------------
def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date).

    Garbage, negative values and dates without a zone give None (use backoff).
    """
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
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


# --- error mapping --------------------------------------------------------------
def error_for_status(status: int, headers: httpx.Headers, now: float) -> LLMError:
    """Map a non-200 status to a fixed code (the body is never read)."""
    retry_after = parse_retry_after(headers.get("retry-after"), now=now)
    if status == 429:
        return LLMError("rate_limited", status_code=status, retry_after=retry_after)
    if status >= 500:
        return LLMError("server_error", status_code=status, retry_after=retry_after)
    if status in (401, 403):
        return LLMError("auth_failed", permanent=True, status_code=status)
    if 400 <= status < 500:
        return LLMError("client_error", permanent=True, status_code=status)
    return LLMError("bad_response", permanent=True, status_code=status)


def error_for_exception(exc: BaseException) -> LLMError:
    """Map a transport exception to a fixed code; its text is never kept."""
    chain: list[BaseException] = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 5:
        chain.append(chain[-1].__cause__)
    names = {type(item).__name__ for item in chain}
    if names & {"ClientConnectorError", "ConnectError", "ConnectionRefusedError"}:
        return LLMError("connect_error")
    if names & {
        "ServerDisconnectedError",
        "ClientPayloadError",
        "ClientOSError",
        "RemoteProtocolError",
        "ReadError",
        "WriteError",
        "ConnectionResetError",
        "ContentLengthError",
        "TransferEncodingError",
    }:
        return LLMError("protocol_error")
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return LLMError("timeout")
    return LLMError("protocol_error")


TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, OSError)
try:
    import aiohttp

    TRANSPORT_ERRORS = (*TRANSPORT_ERRORS, aiohttp.ClientError)
except ImportError:  # pragma: no cover - httpx-aiohttp depends on it
    pass


# --- request and response -------------------------------------------------------
def request_body(
    messages: list[dict[str, str]], config: LLMConfig, *, stream: bool
) -> dict[str, Any]:
    """The JSON body sent upstream (messages are already sanitized)."""
    body: dict[str, Any] = {
        "model": config.model,
        "messages": messages,
        "max_tokens": config.max_tokens,
        "temperature": config.temperature,
        "stream": stream,
    }
    return body


def _headers(config: LLMConfig, *, stream: bool) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {config.api_key}",
        "Accept": "text/event-stream" if stream else "application/json",
    }


def parse_completion(body: bytes, config: LLMConfig, stats: CallStats) -> str:
    """Validate a chat-completion body; return the reply text (capped)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise LLMError("bad_response", permanent=True) from None
    try:
        content = doc["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LLMError("bad_response", permanent=True) from None
    if not isinstance(content, str) or not content.strip():
        raise LLMError("bad_response", permanent=True)
    usage = doc.get("usage") if isinstance(doc, dict) else None
    _take_usage(usage, stats)
    return _cap_reply(content, config, stats)


def _take_usage(usage: Any, stats: CallStats) -> None:
    if not isinstance(usage, dict):
        return
    for key, attr in (
        ("prompt_tokens", "tokens_in"),
        ("completion_tokens", "tokens_out"),
    ):
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            setattr(stats, attr, min(value, 10_000_000))


def _cap_reply(text: str, config: LLMConfig, stats: CallStats) -> str:
    if len(text) > config.max_reply_chars:
        stats.truncated = True
        return text[: config.max_reply_chars]
    return text


async def _read_capped(response: httpx.Response, config: LLMConfig) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > config.max_response_bytes:
            raise LLMError("response_too_large", permanent=True)
    return bytes(body)


async def _attempt_complete(
    client: httpx.AsyncClient,
    messages: list[dict[str, str]],
    config: LLMConfig,
    stats: CallStats,
    hooks: Hooks,
    budget: float,
) -> str:
    timeout = httpx.Timeout(min(config.timeout, budget))
    body = request_body(messages, config, stream=False)
    try:
        async with asyncio.timeout(budget):
            async with client.stream(
                "POST",
                config.url,
                json=body,
                headers=_headers(config, stream=False),
                timeout=timeout,
            ) as response:
                stats.status_code = response.status_code
                if response.status_code != 200:
                    raise error_for_status(
                        response.status_code, response.headers, hooks.wall()
                    )
                raw = await _read_capped(response, config)
    except LLMError:
        raise
    except TimeoutError:
        raise LLMError("timeout") from None
    except TRANSPORT_ERRORS as exc:
        raise error_for_exception(exc) from None
    return parse_completion(raw, config, stats)


async def _run_with_retries(
    attempt: Callable[[float], Awaitable[Any]],
    config: LLMConfig,
    stats: CallStats,
    hooks: Hooks,
    deadline_at: float,
) -> Any:
    """Call ``attempt(budget)`` until it succeeds, a permanent error, or no budget."""
    tries = 0
    while True:
        budget = deadline_at - hooks.clock()
        if budget <= 0:
            raise LLMError("deadline")
        stats.upstream_calls += 1
        try:
            return await attempt(budget)
        except LLMError as error:
            delay = retry_delay(error, tries, config, hooks)
            if delay is None:
                raise
            if hooks.clock() + delay >= deadline_at:
                raise LLMError("deadline", status_code=error.status_code) from None
            stats.delays.append(delay)
            await hooks.sleep(delay)
            tries += 1
            stats.retries = tries


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
            text = await _run_with_retries(
                lambda budget: _attempt_complete(
                    the_client, messages, config, stats, hooks, budget
                ),
                config,
                stats,
                hooks,
                deadline_at,
            )
    finally:
        stats.latency_ms = int(max(0.0, hooks.clock() - started) * 1000)
    stats.ttft_ms = stats.latency_ms
    return str(text)


class _gate:
    """Async context: the per-process in-flight cap, waiting no longer than the
    deadline (then LLMError("deadline"))."""

    def __init__(
        self, semaphore: asyncio.Semaphore | None, deadline_at: float, hooks: Hooks
    ) -> None:
        self.semaphore, self.deadline_at, self.hooks = semaphore, deadline_at, hooks

    async def __aenter__(self) -> None:
        if self.semaphore is None:
            return
        budget = self.deadline_at - self.hooks.clock()
        try:
            async with asyncio.timeout(max(budget, 0.001)):
                await self.semaphore.acquire()
        except TimeoutError:
            raise LLMError("deadline") from None

    async def __aexit__(self, *exc: object) -> None:
        if self.semaphore is not None:
            self.semaphore.release()
