"""A 429 storm (RELIABILITY.md §2.1 #4): retries are not amplified into a flood.

Every upstream call answers 429. Several users send several messages each; the
retry budget (LLM_MAX_RETRIES) bounds each logical call and the shared breaker
stops all of them once it opens, so the upstream sees at most users * (1 + retries)
calls, and every user still gets a fallback reply, never a 500.
"""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from chat import breaker
from chat.models import LLMCall
from chat.services import conversation_start
from tests import factories
from tests.chat import llm_support
from tests.chat.llm_support import UNSURE_TEXT, post_message
from tests.llm_server import Fault

llm_server = llm_support.llm_server
llm_server_module = llm_support.llm_server_module
llm_on = llm_support.llm_on

pytestmark = pytest.mark.django_db

USERS = 6
MESSAGES_EACH = 3


def users_with_conversations(count: int) -> list[tuple[APIClient, int]]:
    out = []
    for n in range(count):
        user = factories.make_user(username=f"storm{n}")
        client = APIClient()
        client.force_authenticate(user=user)
        out.append((client, conversation_start(user=user).pk))
    return out


@pytest.mark.parametrize("retry_after", [None, "0"])
def test_a_429_storm_stays_within_users_times_one_plus_retries_upstream_calls(
    llm_on: Any, settings: Any, retry_after: str | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    llm_on.set_default(Fault("status", status=429, headers=headers))
    users = users_with_conversations(USERS)

    replies = [
        post_message(client, conversation, UNSURE_TEXT)
        for _ in range(MESSAGES_EACH)
        for client, conversation in users
    ]

    assert llm_on.calls <= USERS * (1 + settings.LLM_MAX_RETRIES)
    assert [r.status_code for r in replies] == [201] * USERS * MESSAGES_EACH
    assert {r.json()["reply"]["source"] for r in replies} == {"fallback"}
    assert all(r.json()["reply"]["notice"] for r in replies)
    assert breaker.breaker_snapshot().state == "open"
    transitions = [(t.from_state, t.to_state) for t in breaker.breaker_transitions()]
    assert transitions == [("closed", "open")]


def test_under_a_429_storm_each_admitted_call_uses_at_most_its_retry_budget(
    llm_on: Any, settings: Any
) -> None:
    llm_on.set_default(Fault("status", status=429))
    users = users_with_conversations(USERS)

    for _ in range(MESSAGES_EACH):
        for client, conversation in users:
            post_message(client, conversation, UNSURE_TEXT)

    admitted = LLMCall.objects.filter(outcome="upstream_rate_limited")
    refused = LLMCall.objects.filter(outcome="breaker_open")
    threshold = settings.CIRCUIT_BREAKER_FAILURE_THRESHOLD
    assert admitted.count() == threshold
    assert refused.count() == USERS * MESSAGES_EACH - threshold
    assert {c.upstream_calls for c in admitted} == {1 + settings.LLM_MAX_RETRIES}
    assert sum(c.upstream_calls for c in LLMCall.objects.all()) == llm_on.calls
