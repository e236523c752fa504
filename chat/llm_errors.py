"""LLM failures as fixed codes: ``LLMError``, which codes retry, which count upstream.

Every failure of an LLM call is an ``LLMError`` whose message is a fixed code, never a
response body, a URL or key material. Transport exceptions are mapped by type name
(httpx and aiohttp raise different classes for the same event); their text is never
kept.
"""

from __future__ import annotations

import httpx

# "upstream_rate_limited" is the provider's 429; our own limiter's refusal is
# "rate_limited" (chat/limits.py) and never reaches the provider.
RETRYABLE_CODES = frozenset(
    {
        "connect_error",
        "timeout",
        "protocol_error",
        "upstream_rate_limited",
        "server_error",
    }
)
# Codes that say nothing about the upstream's health: our request, our key, our own
# code, our shared state, or a user who left. They never count against the breaker.
NOT_UPSTREAM_FAULTS = frozenset(
    {
        "client_error",
        "auth_failed",
        "not_configured",
        "client_disconnected",
        "internal",
    }
)


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
        """4xx other than 429, a missing key, our own errors and client disconnects
        never count as upstream failures."""
        return self.code not in NOT_UPSTREAM_FAULTS


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
