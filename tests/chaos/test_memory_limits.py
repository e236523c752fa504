"""RELIABILITY.md §2.1 #30: conversation memory limits, and cleanup beside new messages."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from bench.load import harness
from bench.load.client import ChatClient, Recorder, Reply, new_session
from tests.chaos import api
from tests.chaos.conftest import ChaosFigures, Deployment

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

CONTEXT = 4


def test_the_context_sent_to_the_llm_never_exceeds_max_messages_per_session(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(workers=1, extra={"MAX_MESSAGES_PER_SESSION": str(CONTEXT)})
    token = deployment.users(1)[0]["token"]
    with api.client(deployment.base_url, token) as http:
        conversation = api.start_conversation(http)
        replies = [
            api.post_message(http, conversation, api.LLM_CANARY_TEXT) for _ in range(8)
        ]

    assert deployment.llm is not None
    sizes = [
        sum(1 for m in request["body"]["messages"] if m.get("role") != "system")
        for request in deployment.llm.requests
        if isinstance(request.get("body"), dict)
    ]
    stored = deployment.count(
        "SELECT COUNT(*) FROM chat_message WHERE conversation_id = ?", (conversation,)
    )
    chaos_figures.scenarios.append("30 memory limits")
    chaos_figures.messages_accepted += sum(r.status_code == 201 for r in replies)
    assert [r.status_code for r in replies] == [201] * 8
    assert len(sizes) == 8
    assert max(sizes) == CONTEXT
    assert stored == 1 + 2 * 8


async def _post_many(
    base_url: str, tokens: list[str], conversations: list[int], posts: int
) -> list[tuple[str, Reply]]:
    results: list[tuple[str, Reply]] = []
    async with new_session(total_timeout=60) as session:

        async def user(n: int) -> None:
            client = ChatClient(session, [base_url], Recorder(), token=tokens[n])
            for i in range(posts):
                key = f"cleanup-{n}-{i}"
                reply = await client.send(
                    conversations[n], kind="rules", text=api.CANARY_TEXT, key=key
                )
                results.append((key, reply))
                await asyncio.sleep(0.05)

        await asyncio.gather(*(user(n) for n in range(len(tokens))))
    return results


def _cleanup(deployment: Deployment, now: datetime | None = None) -> int:
    args = ["cleanup_sessions"] + (["--now", now.isoformat()] if now else [])
    out = harness.manage(deployment.config, *args)
    return int(out.strip().rsplit("closed=", 1)[1])


def test_cleanup_running_beside_new_messages_loses_none_and_later_turns_continue_anew(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(workers=2, llm=False)
    tokens = [user["token"] for user in deployment.users(3)]
    conversations = []
    for token in tokens:
        with api.client(deployment.base_url, token) as http:
            conversations.append(api.start_conversation(http))
    closed_counts: list[int] = []
    expire_all = datetime.now(UTC) + timedelta(hours=25)

    def cleanup_loop() -> None:
        closed_counts.append(_cleanup(deployment))
        closed_counts.append(_cleanup(deployment, expire_all))
        closed_counts.append(_cleanup(deployment, expire_all))

    cleaner = threading.Thread(target=cleanup_loop)
    cleaner.start()
    results = asyncio.run(_post_many(deployment.base_url, tokens, conversations, 40))
    cleaner.join(timeout=120)

    stored = {key: api.stored_user_messages(deployment, key) for key, _ in results}
    statuses = Counter(reply.status for _, reply in results)
    accepted = [key for key, reply in results if reply.status == 201]
    api.TALLY.observe_replies(deployment.base_url, [reply for _, reply in results])
    chaos_figures.scenarios.append("30 cleanup beside messages")
    chaos_figures.faults_injected += 1
    chaos_figures.messages_accepted += len(accepted)
    chaos_figures.messages_lost += sum(stored[key] == 0 for key in accepted)
    chaos_figures.messages_duplicated += sum(count > 1 for count in stored.values())
    assert statuses == {201: len(results)}
    assert closed_counts[:2] == [0, 3]
    assert set(stored.values()) == {1}
    successors = deployment.count(
        "SELECT COUNT(*) FROM chat_conversation WHERE continued_from_id IS NOT NULL"
    )
    assert closed_counts[2] <= successors <= len(tokens) * 2
    closed = deployment.count(
        "SELECT COUNT(*) FROM chat_conversation WHERE status = 'closed'"
    )
    assert closed == sum(closed_counts)
    assert deployment.audit_count("conversation_close") == len(closed_counts)
    assert deployment.audit_count("message_sent") == len(results)
