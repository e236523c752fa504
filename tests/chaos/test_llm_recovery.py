"""RELIABILITY.md §2.1 #10 and #12: a stream cut mid-SSE; the breaker opens, recovers.

Through the running server, with tests/llm_server.py as the LLM and the four
assertions of §2 (what the user sees, stored once, the rows, no PHI).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.chaos import api
from tests.chaos.conftest import ChaosFigures, Deployment
from tests.llm_server import Fault
from tests.phi_tripwire import find_canary

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


def test_a_stream_cut_mid_sse_is_stored_incomplete_once_and_a_retry_adds_nothing(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(workers=1)
    assert deployment.llm is not None
    deployment.llm.set_default(Fault("cut_stream", chunks=6, chunk_delay=0.05))
    token = deployment.users(1)[0]["token"]
    with api.client(deployment.base_url, token) as http:
        conversation = api.start_conversation(http)
        cut = api.post_stream(http, conversation, api.LLM_CANARY_TEXT, key="cut-1")
        messages_after_cut = deployment.count("SELECT COUNT(*) FROM chat_message")
        retried = api.post_message(http, conversation, api.LLM_CANARY_TEXT, key="cut-1")

    calls = deployment.llm_call_rows()
    chaos_figures.scenarios.append("10 stream cut")
    chaos_figures.faults_injected += 1
    chaos_figures.messages_accepted += api.stored_user_messages(deployment, "cut-1")
    assert cut.status == 200
    assert cut.headers.get("X-Request-ID")
    assert cut.named("delta")
    assert [e["error"] for e in cut.named("error")] == ["stream_interrupted"]
    assert cut.named("done") == []
    assert not any(find_canary(str(data)) for _, data in cut.events)
    assert api.stored_user_messages(deployment, "cut-1") == 1
    assert api.stored_replies(deployment, "cut-1") == [("llm", "incomplete")]
    assert retried.status_code == 201
    assert retried.json()["reply"]["notice"]
    assert deployment.count("SELECT COUNT(*) FROM chat_message") == messages_after_cut
    assert [(c["outcome"], c["upstream_calls"]) for c in calls] == [("stream_cut", 1)]
    assert deployment.llm_calls() == 1


def _wait_until_open_period_ends(deployment: Deployment) -> None:
    """Sleep past the breaker's stored open_until (epoch seconds), at most 15 s."""
    open_until = float(deployment.breaker_document().get("ou", 0))
    time.sleep(min(15.0, max(0.0, open_until - time.time()) + 0.3))


def test_the_breaker_opens_fails_fast_and_recovers_after_its_timeout(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(
        workers=2,
        extra={
            "LLM_MAX_RETRIES": "0",
            "CIRCUIT_BREAKER_FAILURE_THRESHOLD": "2",
            "CIRCUIT_BREAKER_SUCCESS_THRESHOLD": "1",
            "CIRCUIT_BREAKER_TIMEOUT_SECONDS": "2",
        },
    )
    assert deployment.llm is not None
    llm = deployment.llm
    llm.set_default(Fault("status", status=503))
    deployment.expected_transitions = [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    token = deployment.users(1)[0]["token"]
    with api.client(deployment.base_url, token) as http:
        conversation = api.start_conversation(http)
        failing = [
            api.post_message(http, conversation, api.LLM_CANARY_TEXT) for _ in range(2)
        ]
        calls_when_open = llm.calls
        fast = api.post_message(http, conversation, api.LLM_CANARY_TEXT)
        calls_after_fast = llm.calls
        llm.set_default(Fault())
        _wait_until_open_period_ends(deployment)
        recovered = api.post_message(http, conversation, api.LLM_CANARY_TEXT)
        after = api.post_message(http, conversation, api.LLM_CANARY_TEXT)

    outcomes = [c["outcome"] for c in deployment.llm_call_rows()]
    chaos_figures.scenarios.append("12 breaker opens and recovers")
    chaos_figures.faults_injected += calls_when_open
    chaos_figures.messages_accepted += deployment.count(
        "SELECT COUNT(*) FROM chat_message WHERE role = 'user'"
    )
    for response in [*failing, fast]:
        api.assert_fallback_reply(response)
    assert calls_when_open == 2
    assert calls_after_fast == calls_when_open
    assert recovered.json()["reply"]["source"] == "llm"
    assert after.json()["reply"]["source"] == "llm"
    assert outcomes == ["server_error", "server_error", "breaker_open", "ok", "ok"]
    assert deployment.transitions() == deployment.expected_transitions
    assert deployment.breaker_document()["s"] == "closed"
