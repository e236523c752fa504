"""An HTTP client of the chat API (aiohttp) that records every call as a Sample.

Speaks DESIGN.md's API: register, token login, create a conversation, post a
message (JSON or ``Accept: text/event-stream``) with an ``Idempotency-Key``. With
several base URLs (scale-out) a call that cannot reach one server is retried on the
next with the same key, so the logical message is stored exactly once.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

RETRYABLE_STATUS = {502, 503, 504}


@dataclass
class Sample:
    """One HTTP exchange as the client saw it (no message text is kept)."""

    kind: str  # register | token | create | rules | quick | llm | stream
    status: int  # HTTP status, 0 when no response arrived
    error: str  # "" or an error class: http_503, ClientConnectorError ...
    latency_s: float
    ttfe_s: float | None = None  # streams: time to the first server-sent event
    source: str = ""  # the reply's source: rules | llm | fallback
    attempts: int = 1
    finished_at: float = 0.0


@dataclass
class Reply:
    """What a message post returned: status, ids and quick replies (values only)."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    user_message_id: int | None = None
    reply_id: int | None = None
    source: str = ""
    quick_replies: list[str] = field(default_factory=list)
    request_id: str = ""
    retry_after: str = ""


class Recorder:
    """Collects samples; cheap enough for thousands of concurrent users."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def add(self, sample: Sample) -> None:
        sample.finished_at = time.monotonic()
        self.samples.append(sample)


def error_class(status: int, exc: BaseException | None = None) -> str:
    if exc is not None:
        return type(exc).__name__
    return f"http_{status}" if status >= 400 else ""


def _parse_reply(status: int, body: dict[str, Any], headers: Any) -> Reply:
    reply: dict[str, Any] = body["reply"] if isinstance(body.get("reply"), dict) else {}
    user: dict[str, Any] = (
        body["user_message"] if isinstance(body.get("user_message"), dict) else {}
    )
    quick = [
        str(item.get("value"))
        for item in (reply.get("quick_replies") or [])
        if isinstance(item, dict) and item.get("value")
    ]
    return Reply(
        status=status,
        body=body,
        user_message_id=user.get("id"),
        reply_id=reply.get("id"),
        source=str(reply.get("source") or ""),
        quick_replies=quick,
        request_id=headers.get("X-Request-ID", ""),
        retry_after=headers.get("Retry-After", ""),
    )


def _final_event_reply(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The stream's final event as a reply body: it carries the stored reply's id."""
    for event in reversed(events):
        if isinstance(event.get("reply"), dict):
            return event
        if "source" in event and "id" in event:
            return {"reply": event, "user_message": event.get("user_message") or {}}
    return {}


class ChatClient:
    """One simulated user (or API client) talking to one or more app servers."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_urls: list[str],
        recorder: Recorder | None = None,
        *,
        token: str = "",
        retry_other_node: bool = False,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self.session = session
        self.base_urls = base_urls
        self.recorder = recorder or Recorder()
        self.token = token
        self.retry_other_node = retry_other_node
        self.extra_headers = dict(extra_headers or {})
        self.node = 0

    def _headers(self, accept: str = "application/json") -> dict[str, str]:
        headers = {"Accept": accept, **self.extra_headers}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        return headers

    def _url(self, path: str, node: int | None = None) -> str:
        index = self.node if node is None else node
        return self.base_urls[index % len(self.base_urls)] + path

    async def _json(
        self, kind: str, method: str, path: str, payload: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        started = time.monotonic()
        try:
            async with self.session.request(
                method, self._url(path), json=payload, headers=self._headers()
            ) as response:
                body = await _read_json(response)
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.recorder.add(Sample(kind, 0, error_class(0, exc), _since(started)))
            raise
        self.recorder.add(Sample(kind, status, error_class(status), _since(started)))
        return status, body

    async def register(self, username: str, password: str) -> int:
        payload = {"username": username, "password": password}
        status, _ = await self._json("register", "POST", "/api/auth/register/", payload)
        return status

    async def login(self, username: str, password: str) -> str:
        payload = {"username": username, "password": password}
        status, body = await self._json("token", "POST", "/api/auth/token/", payload)
        if status != 200 or "token" not in body:
            raise RuntimeError(f"token login failed with HTTP {status}")
        self.token = str(body["token"])
        return self.token

    async def create_conversation(self) -> int:
        status, body = await self._json("create", "POST", "/api/conversations/", {})
        if status != 201 or "id" not in body:
            raise RuntimeError(f"conversation create failed with HTTP {status}")
        return int(body["id"])

    async def send(
        self,
        conversation_id: int,
        *,
        kind: str,
        text: str | None = None,
        quick_reply: str | None = None,
        stream: bool = False,
        key: str | None = None,
        max_attempts: int = 1,
    ) -> Reply:
        """Post one message; retries (same key) on other nodes when allowed."""
        key = key or uuid.uuid4().hex
        payload: dict[str, Any] = (
            {"quick_reply": quick_reply} if quick_reply is not None else {"text": text}
        )
        path = f"/api/conversations/{conversation_id}/messages/"
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            try:
                reply, ttfe = await self._post_once(path, payload, key, stream)
            except (TimeoutError, aiohttp.ClientError) as exc:
                if attempts < max_attempts:
                    self._next_node()
                    await asyncio.sleep(0.05 * attempts)
                    continue
                sample = Sample(kind, 0, error_class(0, exc), _since(started))
                sample.attempts = attempts
                self.recorder.add(sample)
                raise
            if reply.status in RETRYABLE_STATUS and attempts < max_attempts:
                self._next_node()
                await asyncio.sleep(0.05 * attempts)
                continue
            break
        sample = Sample(
            kind,
            reply.status,
            error_class(reply.status),
            _since(started),
            ttfe_s=ttfe,
            source=reply.source,
            attempts=attempts,
        )
        self.recorder.add(sample)
        return reply

    def _next_node(self) -> None:
        if self.retry_other_node:
            self.node = (self.node + 1) % len(self.base_urls)

    async def _post_once(
        self, path: str, payload: dict[str, Any], key: str, stream: bool
    ) -> tuple[Reply, float | None]:
        accept = "text/event-stream" if stream else "application/json"
        headers = {**self._headers(accept), "Idempotency-Key": key}
        started = time.monotonic()
        async with self.session.post(
            self._url(path), json=payload, headers=headers
        ) as response:
            content_type = response.headers.get("Content-Type", "")
            if response.status < 400 and "text/event-stream" in content_type:
                events, ttfe = await _read_events(response, started)
                body = _final_event_reply(events)
                return _parse_reply(response.status, body, response.headers), ttfe
            body = await _read_json(response)
            ttfe = _since(started) if stream else None
            return _parse_reply(response.status, body, response.headers), ttfe


async def _read_json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    raw = await response.read()
    try:
        body = json.loads(raw) if raw else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"_non_json": True}
    return body if isinstance(body, dict) else {"_list": body}


async def _read_events(
    response: aiohttp.ClientResponse, started: float
) -> tuple[list[dict[str, Any]], float | None]:
    """Read an SSE stream to its end; return the JSON data events and the TTFE."""
    events: list[dict[str, Any]] = []
    ttfe: float | None = None
    async for raw_line in response.content:
        line = raw_line.decode("utf-8", "replace").rstrip("\r\n")
        if not line or line.startswith(":"):
            continue
        if ttfe is None and line.startswith(("data:", "event:")):
            ttfe = _since(started)
        if line.startswith("data:"):
            data = line[5:].strip()
            try:
                event = json.loads(data)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                events.append(event)
    return events, ttfe


def _since(started: float) -> float:
    return time.monotonic() - started


def new_session(
    *, total_timeout: float = 120.0, limit: int = 0
) -> aiohttp.ClientSession:
    """An aiohttp session for many concurrent users (no per-host cap by default)."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=total_timeout)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)
