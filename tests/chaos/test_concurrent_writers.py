"""RELIABILITY.md §2.1 #17: concurrent writers on one conversation, through HTTP."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import pytest

from bench.load.client import ChatClient, Recorder, new_session
from tests.chaos import api
from tests.chaos.conftest import ChaosFigures, Deployment

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

WRITERS = 8
POSTS = 50


async def _write_all(base_url: str, token: str, conversation: int) -> Recorder:
    recorder = Recorder()
    async with new_session(total_timeout=60) as session:

        async def writer(n: int) -> None:
            client = ChatClient(session, [base_url], recorder, token=token)
            for i in range(POSTS):
                await client.send(
                    conversation, kind="rules", text=api.CANARY_TEXT, key=f"w{n}-{i}"
                )

        await asyncio.gather(*(writer(n) for n in range(WRITERS)))
    return recorder


def test_eight_writers_times_fifty_posts_store_four_hundred_turns_and_no_lock_error(
    deploy: Callable[..., Deployment], chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(workers=2, llm=False)
    token = deployment.users(1)[0]["token"]
    with api.client(deployment.base_url, token) as http:
        conversation = api.start_conversation(http)

    recorder = asyncio.run(_write_all(deployment.base_url, token, conversation))

    statuses = Counter(sample.status for sample in recorder.samples)
    user_rows = deployment.count(
        "SELECT COUNT(*) FROM chat_message WHERE conversation_id = ? AND role = 'user'",
        (conversation,),
    )
    replies = deployment.count(
        "SELECT COUNT(*) FROM chat_message WHERE conversation_id = ? "
        "AND in_reply_to_id IS NOT NULL",
        (conversation,),
    )
    api.TALLY.observe_samples(recorder.samples)
    chaos_figures.scenarios.append("17 concurrent writers")
    chaos_figures.messages_accepted += statuses[201]
    chaos_figures.messages_lost += max(0, statuses[201] - user_rows)
    chaos_figures.messages_duplicated += max(0, user_rows - statuses[201])
    assert statuses == {201: WRITERS * POSTS}
    assert user_rows == WRITERS * POSTS
    assert replies == WRITERS * POSTS
    assert deployment.audit_count("message_sent") == WRITERS * POSTS
    assert "database is locked" not in deployment.logs()
