"""The LLM branch through the real request path (RELIABILITY.md §2.1 items 1-12, 15)."""

from __future__ import annotations

from typing import Any

import pytest

from chat import notices
from chat.models import LLMCall, Message
from tests.chat import llm_support
from tests.chat.conftest import audit_rows
from tests.chat.llm_support import API_KEY, UNSURE_TEXT, post_message
from tests.llm_server import DEFAULT_TEXT, Fault, closed_port_url

llm_server = llm_support.llm_server
llm_server_module = llm_support.llm_server_module
llm_on = llm_support.llm_on


def assistant_messages(conversation: Any) -> list[Message]:
    return list(conversation.messages.filter(role="assistant").order_by("id"))


def test_an_unsure_message_is_answered_by_the_llm(
    llm_on: Any, patient_api: Any, conversation: Any
) -> None:
    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.status_code == 201
    reply = response.json()["reply"]
    assert (reply["source"], reply["text"], reply["notice"]) == (
        "llm",
        DEFAULT_TEXT,
        "",
    )
    call = LLMCall.objects.get()
    assert (call.outcome, call.upstream_calls, call.tokens_in, call.tokens_out) == (
        "ok",
        1,
        42,
        17,
    )
    assert (call.user_id, call.conversation_id, call.streamed) == (
        conversation.user_id,
        conversation.pk,
        False,
    )


def test_a_confident_rules_answer_makes_no_llm_call(
    llm_on: Any, patient_api: Any, conversation: Any
) -> None:
    response = post_message(patient_api, conversation.pk, "my steps are not syncing")

    assert response.json()["reply"]["source"] == "rules"
    assert llm_on.calls == 0


def test_without_an_api_key_the_rules_answer_everything(
    llm_on: Any, settings: Any, patient_api: Any, conversation: Any
) -> None:
    settings.GROQ_API_KEY = ""

    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.json()["reply"]["source"] == "rules"
    assert llm_on.calls == 0


def test_llm_down_gives_the_rules_fallback_with_a_notice(
    llm_on: Any, settings: Any, patient_api: Any, conversation: Any
) -> None:
    settings.GROQ_API_BASE_URL = closed_port_url()
    before = conversation.messages.count()

    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.status_code == 201
    reply = response.json()["reply"]
    assert reply["source"] == "fallback"
    assert reply["notice"] == notices.FALLBACK_NOTICE
    assert reply["text"]
    assert conversation.messages.count() == before + 2
    call = LLMCall.objects.get()
    assert (call.outcome, call.upstream_calls, call.retries) == ("connect_error", 3, 2)


def test_a_slow_llm_times_out_and_falls_back(
    llm_on: Any, settings: Any, patient_api: Any, conversation: Any
) -> None:
    settings.LLM_TIMEOUT_SECONDS = 0.2
    settings.LLM_MAX_RETRIES = 0
    llm_on.set_default(Fault(delay=1.0))

    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.json()["reply"]["source"] == "fallback"
    assert LLMCall.objects.get().outcome == "timeout"


def test_a_long_retry_after_is_not_waited_for(
    llm_on: Any, patient_api: Any, conversation: Any
) -> None:
    llm_on.set_default(Fault("status", status=429, headers={"Retry-After": "3600"}))

    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.json()["reply"]["source"] == "fallback"
    call = LLMCall.objects.get()
    assert (call.outcome, call.status_code, call.upstream_calls) == (
        "upstream_rate_limited",
        429,
        1,
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_then_success_store_exactly_one_llm_answer(
    llm_on: Any, patient_api: Any, conversation: Any, status: int
) -> None:
    llm_on.push(Fault("status", status=status))

    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.json()["reply"]["source"] == "llm"
    assert LLMCall.objects.get().retries == 1
    assert [m.source for m in assistant_messages(conversation)][-1] == "llm"
    assert len(assistant_messages(conversation)) == 2


@pytest.mark.parametrize("status", [401, 403])
def test_a_rejected_key_opens_one_incident_and_never_trips_the_breaker(
    llm_on: Any,
    patient_api: Any,
    conversation: Any,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from chat.breaker import breaker_snapshot
    from compliance.models import Incident

    llm_on.set_default(Fault("status", status=status))
    caplog.set_level("DEBUG")

    for _ in range(6):
        response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.json()["reply"]["source"] == "fallback"
    assert llm_on.calls == 6
    assert Incident.objects.filter(source_key="llm-credentials").count() == 1
    assert len(audit_rows("LLM_CREDENTIAL_ERROR")) == 6
    assert breaker_snapshot().state == "closed"
    assert breaker_snapshot().consecutive_failures == 0
    assert API_KEY not in caplog.text


@pytest.mark.parametrize("status", [400, 422])
def test_other_client_errors_fall_back_without_retry(
    llm_on: Any, patient_api: Any, conversation: Any, status: int
) -> None:
    llm_on.set_default(Fault("status", status=status))

    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.json()["reply"]["source"] == "fallback"
    assert llm_on.calls == 1


@pytest.mark.parametrize(
    "fault",
    [Fault("html"), Fault("json", body={"choices": [{"message": {"content": None}}]})],
)
def test_a_bad_response_is_never_stored_as_an_answer(
    llm_on: Any, patient_api: Any, conversation: Any, fault: Fault
) -> None:
    llm_on.set_default(fault)

    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.json()["reply"]["source"] == "fallback"
    assert not conversation.messages.filter(source="llm").exists()
    assert llm_on.calls == 1


def test_the_breaker_opens_and_then_fails_fast_without_upstream_calls(
    llm_on: Any, settings: Any, patient_api: Any, conversation: Any
) -> None:
    from chat.breaker import breaker_snapshot, breaker_transitions

    settings.LLM_MAX_RETRIES = 0
    llm_on.set_default(Fault("status", status=503))
    for _ in range(5):
        post_message(patient_api, conversation.pk, UNSURE_TEXT)
    calls_when_opened = llm_on.calls

    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.json()["reply"]["source"] == "fallback"
    assert llm_on.calls == calls_when_opened == 5
    assert breaker_snapshot().state == "open"
    assert LLMCall.objects.filter(outcome="breaker_open").count() == 1
    assert [t.to_state for t in breaker_transitions()] == ["open"]


def test_the_per_user_hourly_llm_limit_falls_back_without_a_call(
    llm_on: Any, settings: Any, patient_api: Any, conversation: Any
) -> None:
    settings.RATE_LIMIT_CALLS_PER_USER_HOUR = 1
    post_message(patient_api, conversation.pk, UNSURE_TEXT)

    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.json()["reply"]["source"] == "fallback"
    assert llm_on.calls == 1
    assert LLMCall.objects.filter(outcome="rate_limited").count() == 1


def test_too_many_messages_get_429_with_retry_after_and_a_json_body(
    llm_on: Any, settings: Any, patient_api: Any, conversation: Any
) -> None:
    settings.RATE_LIMIT_MESSAGES_PER_MINUTE = 2
    for _ in range(2):
        post_message(patient_api, conversation.pk, "my steps are not syncing")

    response = post_message(patient_api, conversation.pk, "my steps are not syncing")

    assert response.status_code == 429
    body = response.json()
    assert body["error"] == "rate_limited"
    assert 1 <= body["retry_after"] <= 60
    assert response["Retry-After"] == str(body["retry_after"])


def test_the_models_reply_is_sanitized_before_it_is_stored_or_shown(
    llm_on: Any, patient_api: Any, conversation: Any
) -> None:
    llm_on.set_default(Fault(content="Write to canary.patient@example.org today."))

    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    reply = response.json()["reply"]
    assert "[EMAIL]" in reply["text"]
    assert "canary.patient" not in reply["text"]
    assert "canary.patient" not in assistant_messages(conversation)[-1].text


def test_a_sanitizer_failure_on_the_outgoing_prompt_blocks_the_call(
    llm_on: Any,
    patient_api: Any,
    conversation: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chat import prompting, sanitizer

    post_message(patient_api, conversation.pk, "my steps are not syncing")
    real = sanitizer.sanitize

    def broken(text: str, **kw: Any) -> Any:
        if "syncing" in text:
            return real("\x00", **kw).__class__(
                text="[SANITIZER_ERROR]",
                spans=(),
                counts={},
                blocked=True,
                blocked_types=("SANITIZER_ERROR",),
            )
        return real(text, **kw)

    monkeypatch.setattr(prompting.sanitizer, "sanitize", broken)

    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.json()["reply"]["source"] == "fallback"
    assert llm_on.calls == 0
    assert LLMCall.objects.get().outcome == "prompt_blocked"


def test_a_failing_sanitizer_blocks_the_message_before_any_llm_call(
    llm_on: Any,
    patient_api: Any,
    conversation: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chat import phi_names
    from compliance.models import AuditEvent

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("detector exploded")

    monkeypatch.setattr(phi_names, "detect", explode)
    before = conversation.messages.count()

    response = post_message(patient_api, conversation.pk, UNSURE_TEXT)

    assert response.status_code == 422
    assert response.json()["error"] == "phi_blocked"
    assert "detector exploded" not in response.content.decode()
    assert llm_on.calls == 0
    assert conversation.messages.count() == before
    assert AuditEvent.objects.filter(action="message_blocked").count() == 1
