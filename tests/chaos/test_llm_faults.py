"""RELIABILITY.md §2.1 #1, #2, #3, #5, #6, #7: LLM faults through the running server.

The app runs as in production; its LLM is tests/llm_server.py (or a closed port).
Each test checks the four things of §2: what the user sees (status, fallback
notice, request id), the turn stored exactly once with one reply, the LLMCall /
breaker / incident / audit rows, and (deploy's teardown) no PHI anywhere.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.chaos import api
from tests.chaos.conftest import ChaosFigures, Deployment
from tests.llm_server import Fault, closed_port_url

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


def send_one(deployment: Deployment, key: str) -> httpx.Response:
    token = deployment.users(1)[0]["token"]
    with api.client(deployment.base_url, token, timeout=60) as http:
        conversation = api.start_conversation(http)
        return api.post_message(http, conversation, api.LLM_CANARY_TEXT, key=key)


def assert_stored_once_with_one_reply(
    deployment: Deployment, key: str, source: str
) -> None:
    assert api.stored_user_messages(deployment, key) == 1
    assert api.stored_replies(deployment, key) == [(source, "complete")]
    assert deployment.audit_count("message_sent") == 1


def test_llm_down_gives_the_marked_fallback_after_bounded_retries(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(
        workers=1,
        llm=False,
        extra={"GROQ_API_BASE_URL": closed_port_url(), "GROQ_API_KEY": "test-key-1"},
    )

    response = send_one(deployment, "down-1")

    calls = deployment.llm_call_rows()
    chaos_figures.scenarios.append("1 LLM down")
    chaos_figures.faults_injected += calls[0]["upstream_calls"] if calls else 0
    chaos_figures.messages_accepted += api.stored_user_messages(deployment, "down-1")
    api.assert_fallback_reply(response)
    assert_stored_once_with_one_reply(deployment, "down-1", "fallback")
    assert [(c["outcome"], c["upstream_calls"], c["retries"]) for c in calls] == [
        ("connect_error", 3, 2)
    ]
    assert deployment.breaker_document()["cf"] == 1
    assert deployment.transitions() == []


def test_an_llm_slower_than_the_deadline_ends_in_the_fallback_within_it(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(
        workers=1,
        extra={
            "LLM_TIMEOUT_SECONDS": "1",
            "LLM_DEADLINE_SECONDS": "2.5",
            "LLM_RETRY_INITIAL_DELAY_SECONDS": "0.1",
        },
    )
    assert deployment.llm is not None
    deployment.llm.set_default(Fault(delay=30))

    response = send_one(deployment, "slow-1")

    calls = deployment.llm_call_rows()
    chaos_figures.scenarios.append("2 LLM slow")
    chaos_figures.faults_injected += deployment.llm_calls()
    chaos_figures.messages_accepted += api.stored_user_messages(deployment, "slow-1")
    api.assert_fallback_reply(response)
    assert_stored_once_with_one_reply(deployment, "slow-1", "fallback")
    assert len(calls) == 1
    assert calls[0]["outcome"] in ("timeout", "deadline")
    assert 1 <= calls[0]["upstream_calls"] == deployment.llm_calls() <= 3
    assert deployment.past_deadline() == 0
    assert deployment.breaker_document()["cf"] == 1


def test_retry_after_7_is_waited_for_then_the_retry_answers(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(workers=1, extra={"LLM_RETRY_MAX_DELAY_SECONDS": "8"})
    assert deployment.llm is not None
    deployment.llm.push(Fault("status", status=429, headers={"Retry-After": "7"}))

    response = send_one(deployment, "ra-7")

    calls = deployment.llm_call_rows()
    chaos_figures.scenarios.append("3 Retry-After 7")
    chaos_figures.faults_injected += 1
    chaos_figures.messages_accepted += api.stored_user_messages(deployment, "ra-7")
    assert response.status_code == 201
    assert response.json()["reply"]["source"] == "llm"
    assert_stored_once_with_one_reply(deployment, "ra-7", "llm")
    assert [(c["outcome"], c["upstream_calls"], c["retries"]) for c in calls] == [
        ("ok", 2, 1)
    ]
    assert calls[0]["latency_ms"] >= 7000
    assert deployment.llm_calls() == 2


def test_retry_after_3600_is_not_honoured_and_the_user_gets_the_fallback_at_once(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(workers=1)
    assert deployment.llm is not None
    deployment.llm.push(Fault("status", status=429, headers={"Retry-After": "3600"}))

    response = send_one(deployment, "ra-3600")

    calls = deployment.llm_call_rows()
    chaos_figures.scenarios.append("3 Retry-After 3600")
    chaos_figures.faults_injected += 1
    chaos_figures.messages_accepted += api.stored_user_messages(deployment, "ra-3600")
    api.assert_fallback_reply(response)
    assert_stored_once_with_one_reply(deployment, "ra-3600", "fallback")
    assert [(c["outcome"], c["upstream_calls"], c["status_code"]) for c in calls] == [
        ("upstream_rate_limited", 1, 429)
    ]
    assert calls[0]["latency_ms"] < 3_600_000
    assert deployment.llm_calls() == 1


@pytest.mark.parametrize(
    "header", ["soon", "-5", "Wed, 21 Oct 2015 07:28:00 GMT", "1e999"]
)
def test_a_garbage_retry_after_falls_back_to_backoff_and_never_crashes(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures, header: str
) -> None:
    deployment = deploy(workers=1, extra={"LLM_RETRY_INITIAL_DELAY_SECONDS": "0.1"})
    assert deployment.llm is not None
    deployment.llm.push(Fault("status", status=429, headers={"Retry-After": header}))

    response = send_one(deployment, "ra-garbage")

    calls = deployment.llm_call_rows()
    chaos_figures.scenarios.append(f"3 Retry-After {header!r}")
    chaos_figures.faults_injected += 1
    chaos_figures.messages_accepted += api.stored_user_messages(
        deployment, "ra-garbage"
    )
    assert response.status_code == 201
    assert response.json()["reply"]["source"] == "llm"
    assert_stored_once_with_one_reply(deployment, "ra-garbage", "llm")
    assert [(c["outcome"], c["upstream_calls"], c["retries"]) for c in calls] == [
        ("ok", 2, 1)
    ]
    assert "Traceback" not in deployment.logs()


@pytest.mark.parametrize("statuses", [(500, 502), (503, 504)])
def test_server_errors_then_200_succeed_after_retries_with_one_reply_stored(
    deploy: Callable[..., Deployment],
    chaos_figures: ChaosFigures,
    statuses: tuple[int, int],
) -> None:
    deployment = deploy(workers=1, extra={"LLM_RETRY_INITIAL_DELAY_SECONDS": "0.1"})
    assert deployment.llm is not None
    deployment.llm.push(*(Fault("status", status=code) for code in statuses))

    response = send_one(deployment, "5xx")

    calls = deployment.llm_call_rows()
    chaos_figures.scenarios.append(f"5 {statuses[0]}/{statuses[1]} then 200")
    chaos_figures.faults_injected += len(statuses)
    chaos_figures.messages_accepted += api.stored_user_messages(deployment, "5xx")
    assert response.status_code == 201
    assert response.json()["reply"]["source"] == "llm"
    assert_stored_once_with_one_reply(deployment, "5xx", "llm")
    assert [(c["outcome"], c["upstream_calls"], c["retries"]) for c in calls] == [
        ("ok", 3, 2)
    ]
    assert deployment.breaker_document().get("cf", 0) == 0


def test_401_opens_one_incident_never_retries_and_never_trips_the_breaker(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(workers=1, extra={"CIRCUIT_BREAKER_FAILURE_THRESHOLD": "3"})
    assert deployment.llm is not None
    deployment.llm.set_default(Fault("status", status=401))
    deployment.expected_transitions = []
    token = deployment.users(1)[0]["token"]
    keys = [f"auth-{n}" for n in range(5)]
    with api.client(deployment.base_url, token) as http:
        conversation = api.start_conversation(http)
        responses = [
            api.post_message(http, conversation, api.LLM_CANARY_TEXT, key=key)
            for key in keys
        ]

    calls = deployment.llm_call_rows()
    incidents = deployment.count(
        "SELECT COUNT(*) FROM compliance_incident WHERE source_key = 'llm-credentials'"
    )
    chaos_figures.scenarios.append("6 LLM 401")
    chaos_figures.faults_injected += deployment.llm_calls()
    chaos_figures.messages_accepted += sum(
        api.stored_user_messages(deployment, key) for key in keys
    )
    for response in responses:
        api.assert_fallback_reply(response)
    assert all(api.stored_user_messages(deployment, key) == 1 for key in keys)
    assert [(c["outcome"], c["upstream_calls"]) for c in calls] == [
        ("auth_failed", 1)
    ] * len(keys)
    assert deployment.llm_calls() == len(keys)
    assert deployment.transitions() == []
    assert deployment.breaker_document().get("s", "closed") == "closed"
    assert incidents == 1
    assert deployment.audit_count("llm_credential_error") == len(keys)
    assert deployment.config.env["GROQ_API_KEY"] not in deployment.logs()


def test_an_html_page_with_200_is_refused_without_a_retry_storm(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(workers=1)
    assert deployment.llm is not None
    deployment.llm.set_default(Fault("html"))

    response = send_one(deployment, "html-1")

    calls = deployment.llm_call_rows()
    chaos_figures.scenarios.append("7 HTML with 200")
    chaos_figures.faults_injected += deployment.llm_calls()
    chaos_figures.messages_accepted += api.stored_user_messages(deployment, "html-1")
    api.assert_fallback_reply(response)
    assert_stored_once_with_one_reply(deployment, "html-1", "fallback")
    assert [(c["outcome"], c["upstream_calls"]) for c in calls] == [("bad_response", 1)]
    assert deployment.llm_calls() == 1
