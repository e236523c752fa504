"""A small synchronous client of the chat API for chaos tests (httpx on loopback)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from bench.load.harness import idempotency_digest
from tests.phi_tripwire import find_canary

# Rule-answered; the canary e-mail is redacted by the sanitizer before storage.
CANARY_TEXT = "my steps aren't syncing, write to canary.patient@example.org"
RULE_TEXT = "my steps aren't syncing"
LLM_TEXT = "What do you think about walking in the rain?"


def client(base_url: str, token: str = "", timeout: float = 30.0) -> httpx.Client:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    return httpx.Client(base_url=base_url, headers=headers, timeout=timeout)


def start_conversation(api: httpx.Client) -> int:
    response = api.post("/api/conversations/", json={})
    assert response.status_code == 201, response.status_code
    return int(response.json()["id"])


def post_message(
    api: httpx.Client,
    conversation: int,
    text: str = RULE_TEXT,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST one message with an Idempotency-Key (a fresh one unless given)."""
    return api.post(
        f"/api/conversations/{conversation}/messages/",
        json={"text": text},
        headers={"Idempotency-Key": key or uuid.uuid4().hex, **(headers or {})},
    )


def assert_user_visible_error(response: httpx.Response, status: int) -> None:
    """A JSON error with a code and a fixed message, a request id, and no PHI."""
    assert response.status_code == status
    assert response.headers.get("X-Request-ID")
    body = response.json()
    assert isinstance(body.get("error"), str)
    assert body["error"]
    assert isinstance(body.get("message"), str)
    assert not find_canary(response.text)


def stored_user_messages(deployment: Any, key: str) -> int:
    """How many user messages carry this Idempotency-Key in the database."""
    return deployment.count(
        "SELECT COUNT(*) FROM chat_message WHERE role = 'user' AND idempotency_key = ?",
        (idempotency_digest(key),),
    )
