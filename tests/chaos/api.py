"""A small synchronous client of the chat API for chaos tests (httpx on loopback).

Every response it receives is tallied (``TALLY``: status codes, and the user turns
the server answered through its LLM branch, source "llm" or "fallback"), so the
§2.4 figures count what the clients saw rather than what a test says it sent.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.load.harness import idempotency_digest
from tests.phi_tripwire import find_canary

# Rule-answered; the canary e-mail is redacted by the sanitizer before storage.
CANARY_TEXT = "my steps aren't syncing, write to canary.patient@example.org"
# Not confident for the rules, so the LLM branch answers; the canary is redacted
# before the prompt is built and before storage.
LLM_CANARY_TEXT = (
    "What do you think about walking in the rain? Mail canary.patient@example.org"
)
LLM_SOURCES = ("llm", "fallback")


@dataclass
class Tally:
    """What chaos clients observed, for the session's figures."""

    statuses: Counter[int] = field(default_factory=Counter)
    llm_turns: set[tuple[str, int]] = field(default_factory=set)

    def observe(self, base_url: str, status: int, body: dict[str, Any]) -> None:
        """Count the status; remember a stored turn answered by the LLM branch
        (``body`` is the 201 body, or a stream's ``done`` event)."""
        self.statuses[status] += 1
        reply: dict[str, Any] = (
            body["reply"] if isinstance(body.get("reply"), dict) else {}
        )
        user = body.get("user_message")
        user_id = user.get("id") if isinstance(user, dict) else None
        if reply.get("source") in LLM_SOURCES and user_id is not None:
            self.llm_turns.add((base_url, int(user_id)))

    def observe_samples(self, samples: list[Any]) -> None:
        """Statuses of bench.load.client Samples (0: no response arrived)."""
        for sample in samples:
            self.statuses[int(sample.status)] += 1

    def observe_replies(self, base_url: str, replies: list[Any]) -> None:
        """The same for bench.load.client Reply objects (status and body)."""
        for reply in replies:
            self.observe(
                base_url, reply.status, reply.body if reply.status < 300 else {}
            )


TALLY = Tally()


def client(base_url: str, token: str = "", timeout: float = 30.0) -> httpx.Client:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    return httpx.Client(base_url=base_url, headers=headers, timeout=timeout)


def start_conversation(api: httpx.Client) -> int:
    response = api.post("/api/conversations/", json={})
    assert response.status_code == 201, response.status_code
    return int(response.json()["id"])


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def post_message(
    api: httpx.Client,
    conversation: int,
    text: str = CANARY_TEXT,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST one message with an Idempotency-Key (a fresh one unless given)."""
    response = api.post(
        f"/api/conversations/{conversation}/messages/",
        json={"text": text},
        headers={"Idempotency-Key": key or uuid.uuid4().hex, **(headers or {})},
    )
    body = _body(response) if response.status_code == 201 else {}
    TALLY.observe(str(api.base_url), response.status_code, body)
    return response


@dataclass
class Streamed:
    """One streamed message: status, headers and the (event, data) pairs received."""

    status: int
    headers: httpx.Headers
    events: list[tuple[str, dict[str, Any]]]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [data for event, data in self.events if event == name]


def post_stream(
    api: httpx.Client, conversation: int, text: str, *, key: str
) -> Streamed:
    """POST one message with ``Accept: text/event-stream``; read the whole stream."""
    events: list[tuple[str, dict[str, Any]]] = []
    with api.stream(
        "POST",
        f"/api/conversations/{conversation}/messages/",
        json={"text": text},
        headers={"Idempotency-Key": key, "Accept": "text/event-stream"},
    ) as response:
        name = "message"
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = json.loads(line[5:].strip() or "{}")
                events.append((name, data if isinstance(data, dict) else {}))
                name = "message"
    streamed = Streamed(response.status_code, response.headers, events)
    done = streamed.named("done")
    TALLY.observe(str(api.base_url), streamed.status, done[0] if done else {})
    return streamed


def assert_user_visible_error(response: httpx.Response, status: int) -> None:
    """A JSON error with a code and a fixed message, a request id, and no PHI."""
    assert response.status_code == status
    assert response.headers.get("X-Request-ID")
    body = response.json()
    assert isinstance(body.get("error"), str)
    assert body["error"]
    assert isinstance(body.get("message"), str)
    assert not find_canary(response.text)


def assert_fallback_reply(response: httpx.Response) -> None:
    """201 with the rules fallback marked as such (a notice) and a request id."""
    assert response.status_code == 201
    assert response.headers.get("X-Request-ID")
    reply = response.json()["reply"]
    assert reply["source"] == "fallback"
    assert reply["notice"]
    assert not find_canary(response.text)


def stored_user_messages(deployment: Any, key: str) -> int:
    """How many user messages carry this Idempotency-Key in the database."""
    return deployment.count(
        "SELECT COUNT(*) FROM chat_message WHERE role = 'user' AND idempotency_key = ?",
        (idempotency_digest(key),),
    )


def stored_replies(deployment: Any, key: str) -> list[tuple[str, str]]:
    """(source, status) of every assistant message answering this key's user turn."""
    return [
        (str(source), str(status))
        for source, status in deployment.rows(
            "SELECT r.source, r.status FROM chat_message r JOIN chat_message u "
            "ON r.in_reply_to_id = u.id WHERE u.idempotency_key = ?",
            (idempotency_digest(key),),
        )
    ]
