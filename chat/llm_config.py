"""What an LLM call is configured with, what it reports, and its injected time.

``LLMConfig`` reads the GROQ_* and LLM_* settings; ``CallStats`` holds the figures
of one logical call for its LLMCall record (never content); ``Hooks`` carries the
clocks, sleep and randomness that tests drive.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from chat.llm_errors import LLMError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


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
        """The configured client settings, read once (a frozen value shared by
        every call; a changed GROQ_*/LLM_* setting is read again)."""
        return _configured()

    @classmethod
    def read_settings(cls) -> LLMConfig:
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

    @functools.cached_property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    @functools.cached_property
    def request_url(self) -> httpx.URL:
        """``url`` parsed once (httpx parses a string URL on every request)."""
        return httpx.URL(self.url)


@functools.lru_cache(maxsize=1)
def _configured() -> LLMConfig:
    return LLMConfig.read_settings()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: object) -> None:
    if setting.startswith(("GROQ_", "LLM_")):
        _configured.cache_clear()


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
