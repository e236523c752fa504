"""Streaming replies (SSE) through the async message view, and its authentication."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import AsyncClient

from chat import notices
from chat.models import LLMCall, Message
from tests.chat import llm_support
from tests.chat.llm_support import UNSURE_TEXT, parse_sse, send
from tests.llm_server import DEFAULT_TEXT, Fault

llm_server = llm_support.llm_server
llm_server_module = llm_support.llm_server_module
llm_on = llm_support.llm_on


@pytest.fixture
def token(patient: Any) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=patient).key


def test_an_llm_reply_streams_as_deltas_then_done(
    llm_on: Any, token: str, conversation: Any
) -> None:
    llm_on.set_default(Fault(content="First line.\nSecond line. Third line.", chunks=6))

    status, headers, raw = send(conversation.pk, {"text": UNSURE_TEXT}, token=token)

    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    events = parse_sse(raw)
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert "".join(deltas) == "First line.\nSecond line. Third line."
    name, done = events[-1]
    assert name == "done"
    assert done["reply"]["source"] == "llm"
    stored = Message.objects.get(pk=done["reply"]["id"])
    assert (stored.text, stored.status) == (done["reply"]["text"], "complete")
    assert LLMCall.objects.get().streamed is True


def test_a_rules_reply_streams_as_one_delta_and_done(
    llm_on: Any, token: str, conversation: Any
) -> None:
    _, _, raw = send(conversation.pk, {"text": "my steps are not syncing"}, token=token)

    events = parse_sse(raw)
    assert [name for name, _ in events] == ["delta", "done"]
    assert events[1][1]["reply"]["source"] == "rules"
    assert events[0][1]["text"] == events[1][1]["reply"]["text"]
    assert llm_on.calls == 0


def test_a_failure_before_any_text_streams_the_fallback(
    llm_on: Any, token: str, conversation: Any
) -> None:
    llm_on.set_default(Fault("status", status=503))

    _, _, raw = send(conversation.pk, {"text": UNSURE_TEXT}, token=token)

    events = parse_sse(raw)
    assert [name for name, _ in events] == ["delta", "done"]
    reply = events[1][1]["reply"]
    assert (reply["source"], reply["notice"]) == ("fallback", notices.FALLBACK_NOTICE)


def test_a_cut_stream_ends_with_an_error_event_and_an_incomplete_message(
    llm_on: Any, token: str, conversation: Any
) -> None:
    from chat.services import conversation_context

    llm_on.set_default(Fault("cut_stream", content="One. Two. Three. Four.", chunks=4))
    users_before = conversation.messages.filter(role="user").count()

    _, _, raw = send(conversation.pk, {"text": UNSURE_TEXT}, token=token)

    events = parse_sse(raw)
    assert events[0][0] == "delta"
    assert events[-1] == (
        "error",
        {
            "error": "stream_interrupted",
            "message": "The reply was interrupted. Please try again.",
        },
    )
    assert "done" not in [name for name, _ in events]
    partial = conversation.messages.filter(role="assistant").order_by("id").last()
    assert (partial.status, partial.source) == ("incomplete", "llm")
    assert partial.text
    assert partial.text != "One. Two. Three. Four."
    assert conversation.messages.filter(role="user").count() == users_before + 1
    assert partial.text not in [
        m["content"] for m in conversation_context(conversation=conversation)
    ]
    assert LLMCall.objects.get().outcome == "stream_cut"


def test_json_is_returned_when_sse_is_not_asked_for(
    llm_on: Any, token: str, conversation: Any
) -> None:
    status, _, raw = send(
        conversation.pk, {"text": UNSURE_TEXT}, token=token, accept="application/json"
    )

    assert status == 201
    assert json.loads(raw)["reply"]["text"] == DEFAULT_TEXT


def test_errors_before_the_stream_are_json(
    llm_on: Any, token: str, conversation: Any
) -> None:
    status, _, raw = send(conversation.pk, {"text": 5}, token=token)

    assert status == 400
    assert json.loads(raw)["error"] == "invalid"


def test_a_wrong_token_is_refused(llm_on: Any, conversation: Any) -> None:
    status, _, raw = send(conversation.pk, {"text": "hi"}, token="nope")

    assert status in (401, 403)
    assert json.loads(raw)["error"] == "authentication_failed"


def test_no_credentials_are_refused(llm_on: Any, conversation: Any) -> None:
    status, _, raw = send(conversation.pk, {"text": "hi"})

    assert status in (401, 403)
    assert json.loads(raw)["error"] == "not_authenticated"


def test_a_session_without_a_csrf_token_is_refused(
    llm_on: Any, patient: Any, conversation: Any
) -> None:
    client = AsyncClient(enforce_csrf_checks=True)
    client.force_login(patient)

    status, _, raw = send(conversation.pk, {"text": "hi"}, client=client)

    assert status == 403
    assert json.loads(raw)["error"] == "permission_denied"


def test_another_users_conversation_is_404(
    llm_on: Any, other_patient: Any, conversation: Any
) -> None:
    from rest_framework.authtoken.models import Token

    other = Token.objects.create(user=other_patient).key

    status, _, _raw = send(conversation.pk, {"text": UNSURE_TEXT}, token=other)

    assert status == 404
    assert llm_on.calls == 0


def test_a_session_with_its_csrf_token_is_accepted(
    llm_on: Any, patient: Any, conversation: Any
) -> None:
    from django.conf import settings
    from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret

    client = AsyncClient(enforce_csrf_checks=True)
    client.force_login(patient)
    secret = _get_new_csrf_string()
    client.cookies[settings.CSRF_COOKIE_NAME] = secret
    masked = _mask_cipher_secret(secret)

    status, _, raw = send(
        conversation.pk, {"text": "hi"}, client=client, headers={"X-CSRFToken": masked}
    )

    assert status == 200
    assert parse_sse(raw)[-1][0] == "done"
