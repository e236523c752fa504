"""RELIABILITY.md §2.1 #31: rate limits under concurrency, forged proxies, 2 workers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from bench.load.client import ChatClient, Recorder, Reply, new_session
from tests.chaos import api
from tests.chaos.conftest import (
    ChaosFigures,
    Deployment,
)

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

LIMIT = 10
BURST = 50


async def _burst(
    base_url: str, token: str, conversation: int, texts: list[str], forged: bool
) -> list[Reply]:
    async with new_session(total_timeout=60) as session:

        async def one(n: int) -> Reply:
            headers = {"X-Forwarded-For": f"203.0.113.{n % 250}"} if forged else {}
            client = ChatClient(
                session, [base_url], Recorder(), token=token, extra_headers=headers
            )
            return await client.send(
                conversation, kind="rules", text=texts[n], key=f"burst-{n}"
            )

        return list(await asyncio.gather(*(one(n) for n in range(len(texts)))))


def test_fifty_concurrent_posts_let_exactly_the_limit_through_whatever_xff_says(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(
        workers=2,
        llm=False,
        extra={
            "RATE_LIMIT_MESSAGES_PER_MINUTE": str(LIMIT),
            "TRUSTED_PROXY_COUNT": "0",
        },
    )
    token = deployment.users(1)[0]["token"]
    with api.client(deployment.base_url, token) as http:
        conversation = api.start_conversation(http)

    replies = asyncio.run(
        _burst(
            deployment.base_url, token, conversation, [api.CANARY_TEXT] * BURST, True
        )
    )

    statuses = Counter(r.status for r in replies)
    refused = [r for r in replies if r.status == 429]
    stored = deployment.count("SELECT COUNT(*) FROM chat_message WHERE role = 'user'")
    api.TALLY.observe_replies(deployment.base_url, replies)
    chaos_figures.scenarios.append("31 rate limits")
    chaos_figures.faults_injected += len(refused)
    chaos_figures.messages_accepted += statuses[201]
    chaos_figures.messages_lost += max(0, statuses[201] - stored)
    chaos_figures.messages_duplicated += max(0, stored - statuses[201])
    assert statuses == {201: LIMIT, 429: BURST - LIMIT}
    assert all(r.body.get("error") == "rate_limited" and r.request_id for r in refused)
    assert stored == LIMIT
    assert deployment.audit_count("message_sent") == LIMIT


def test_a_rate_limited_message_is_answered_429_with_retry_after(
    deploy: Callable[..., Deployment],
) -> None:
    deployment = deploy(
        workers=1, llm=False, extra={"RATE_LIMIT_MESSAGES_PER_MINUTE": "1"}
    )
    token = deployment.users(1)[0]["token"]
    with api.client(deployment.base_url, token) as http:
        conversation = api.start_conversation(http)
        first = api.post_message(http, conversation)
        refused = api.post_message(http, conversation)

    assert first.status_code == 201
    api.assert_user_visible_error(refused, 429)
    assert int(refused.headers["Retry-After"]) >= 1


def test_the_global_llm_limit_holds_exactly_across_two_worker_processes(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures
) -> None:
    global_limit = 5
    deployment = deploy(
        workers=2, llm=True, extra={"RATE_LIMIT_CALLS_PER_HOUR": str(global_limit)}
    )
    tokens = [user["token"] for user in deployment.users(4)]
    replies: list[Reply] = []
    for token in tokens:
        with api.client(deployment.base_url, token) as http:
            conversation = api.start_conversation(http)
        replies += asyncio.run(
            _burst(
                deployment.base_url,
                token,
                conversation,
                [api.LLM_CANARY_TEXT] * 4,
                False,
            )
        )

    sources = Counter(r.source for r in replies)
    api.TALLY.observe_replies(deployment.base_url, replies)
    chaos_figures.faults_injected += sources["fallback"]
    chaos_figures.messages_accepted += sum(r.status == 201 for r in replies)
    assert [r.status for r in replies] == [201] * 16
    assert sources == {"llm": global_limit, "fallback": 16 - global_limit}
    assert deployment.llm_calls() == global_limit
    assert all(r.body["reply"]["notice"] for r in replies if r.source == "fallback")


def _failed_logins_then_right_password(
    deployment: Deployment, username: str, password: str
) -> tuple[list[httpx.Response], httpx.Response]:
    with api.client(deployment.base_url) as http:
        failures = [
            http.post(
                "/api/auth/token/",
                json={"username": username, "password": "wrong-password"},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            )
            for n in range(5)
        ]
        locked = http.post(
            "/api/auth/token/",
            json={"username": username, "password": password},
            headers={"X-Forwarded-For": "198.51.100.200"},
        )
    return failures, locked


def test_forged_x_forwarded_for_does_not_escape_the_login_lockout(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(
        workers=2,
        llm=False,
        extra={"AXES_FAILURE_LIMIT": "3", "TRUSTED_PROXY_COUNT": "0"},
    )
    user = deployment.users(1)[0]

    failures, locked = _failed_logins_then_right_password(
        deployment, user["username"], user["password"]
    )

    assert [r.status_code for r in failures[:2]] == [401, 401]
    assert locked.status_code == 429
    assert locked.headers.get("X-Request-ID")
    assert deployment.audit_count("login_failed") >= 3
    chaos_figures.faults_injected += len(failures)


def test_forged_x_forwarded_for_never_reaches_the_audit_trail_as_client_ip(
    deploy: Callable[..., Deployment],
) -> None:
    deployment = deploy(
        workers=1,
        llm=False,
        extra={"AXES_FAILURE_LIMIT": "3", "TRUSTED_PROXY_COUNT": "0"},
    )
    user = deployment.users(1)[0]

    _failed_logins_then_right_password(deployment, user["username"], user["password"])

    forged = deployment.count(
        "SELECT COUNT(*) FROM compliance_auditevent WHERE client_ip LIKE '198.51.100.%'"
    )
    assert forged == 0
    assert (
        deployment.count(
            "SELECT COUNT(*) FROM compliance_auditevent WHERE client_ip = '127.0.0.1'"
        )
        >= 3
    )
