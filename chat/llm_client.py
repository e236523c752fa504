"""The LLM's HTTP client: httpx on aiohttp, one per event loop, behind an in-flight cap.

PERFORMANCE.md: httpx's own async pool collapses above ~100 calls in flight, so the
transport is httpx-aiohttp. TLS verification is always on, the environment's proxy
settings are ignored, redirects are not followed, and ``https://`` is required except
for loopback hosts. At most LLM_MAX_IN_FLIGHT calls are in flight per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.cookiejar
import ssl
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any

import httpx

from chat.llm_config import Hooks, LLMConfig, check_base_url
from chat.llm_errors import LLMError

_clients: weakref.WeakKeyDictionary[Any, tuple[httpx.AsyncClient, asyncio.Semaphore]]
_clients = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """The verifying TLS context (certifi's CA bundle), one per process: building
    it loads the bundle, ~35 ms of CPU, which every new client used to pay."""
    return httpx.create_ssl_context(verify=True, trust_env=False)


class NoCookies(httpx.Cookies):
    """A cookie store that keeps nothing: the shared client serves every user, so
    a cookie set by the provider must not follow one user's call into the next
    (and parsing Set-Cookie through urllib's wrappers cost CPU on every reply)."""

    def __init__(self) -> None:
        super().__init__(_JarThatKeepsNothing())

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _JarThatKeepsNothing(http.cookiejar.CookieJar):
    """Nothing set on it is kept, so there is never a cookie to send."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None


class LLMHTTPClient(httpx.AsyncClient):
    """httpx's AsyncClient with cookies off (one ``NoCookies`` per client)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._no_cookies = NoCookies()

    @property  # type: ignore[misc]  # read-only here: nothing may set cookies
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies


def build_client(config: LLMConfig) -> httpx.AsyncClient:
    """An httpx client on the aiohttp transport; TLS verification always on."""
    from httpx_aiohttp import AiohttpTransport

    check_base_url(config.base_url)
    limits = httpx.Limits(
        max_connections=config.max_in_flight,
        max_keepalive_connections=min(config.max_in_flight, 32),
    )
    transport = AiohttpTransport(verify=tls_context(), trust_env=False, limits=limits)
    return LLMHTTPClient(
        transport=transport,
        verify=tls_context(),
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


class _gate:
    """Async context: the per-process in-flight cap, waiting no longer than the
    deadline (then LLMError("deadline"))."""

    def __init__(
        self, semaphore: asyncio.Semaphore, deadline_at: float, hooks: Hooks
    ) -> None:
        self.semaphore, self.deadline_at, self.hooks = semaphore, deadline_at, hooks

    async def __aenter__(self) -> None:
        budget = self.deadline_at - self.hooks.clock()
        try:
            async with asyncio.timeout(max(budget, 0.001)):
                await self.semaphore.acquire()
        except TimeoutError:
            raise LLMError("deadline") from None

    async def __aexit__(self, *exc: object) -> None:
        self.semaphore.release()
