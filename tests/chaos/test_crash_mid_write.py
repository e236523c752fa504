"""RELIABILITY.md §2.1 #22: the server is killed (SIGKILL) in the middle of writes."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable

import aiohttp
import pytest

from bench.load import harness
from bench.load.client import ChatClient, Recorder, new_session
from tests.chaos import api
from tests.chaos.conftest import ChaosFigures, Deployment

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

USERS = 4
POSTS = 40
CRASH_AFTER = 30


async def _load_until_crash(
    deployment: Deployment, tokens: list[str], conversations: list[int]
) -> tuple[dict[str, int], list[str]]:
    """Post from every user; kill the server after CRASH_AFTER acknowledgements."""
    acknowledged: dict[str, int] = {}
    attempted: list[str] = []
    crashed = threading.Event()
    loop = asyncio.get_running_loop()
    async with new_session(total_timeout=10) as session:

        async def user(n: int) -> None:
            client = ChatClient(
                session, [deployment.base_url], Recorder(), token=tokens[n]
            )
            for i in range(POSTS):
                key = f"crash-{n}-{i}"
                attempted.append(key)
                try:
                    reply = await client.send(
                        conversations[n], kind="rules", text=api.CANARY_TEXT, key=key
                    )
                except (TimeoutError, aiohttp.ClientError):
                    return
                if reply.status == 201 and reply.user_message_id is not None:
                    acknowledged[key] = reply.user_message_id
                if len(acknowledged) >= CRASH_AFTER and not crashed.is_set():
                    crashed.set()
                    await loop.run_in_executor(None, deployment.crash)
                if crashed.is_set() and i > POSTS // 2:
                    return

        await asyncio.gather(*(user(n) for n in range(USERS)))
    return acknowledged, attempted


def _undecryptable_tables(deployment: Deployment) -> int:
    """Tables whose stored values the app itself fails to decrypt (tests/chaos/phiscan)."""
    scan = json.loads(harness.run_python(deployment.config, "tests.chaos.phiscan"))
    return int(scan["undecryptable_tables"]) + int(scan.get("unreadable_tables", 0))


def test_killing_the_server_mid_write_loses_no_acknowledged_message_and_tears_none(
    deploy: Callable[..., Deployment],
    chaos_figures: ChaosFigures,
) -> None:
    deployment = deploy(workers=2, llm=False)
    tokens = [user["token"] for user in deployment.users(USERS)]
    conversations = []
    for token in tokens:
        with api.client(deployment.base_url, token) as http:
            conversations.append(api.start_conversation(http))

    acknowledged, attempted = asyncio.run(
        _load_until_crash(deployment, tokens, conversations)
    )
    deployment.restart()
    outcomes = {}
    for key in attempted:
        n = int(key.split("-")[1])
        with api.client(deployment.base_url, tokens[n]) as http:
            outcomes[key] = api.post_message(
                http, conversations[n], api.CANARY_TEXT, key=key
            )

    stored = {key: api.stored_user_messages(deployment, key) for key in attempted}
    chaos_figures.scenarios.append("22 crash mid-write")
    chaos_figures.faults_injected += 1
    chaos_figures.messages_accepted += len(acknowledged)
    chaos_figures.messages_lost += sum(stored[key] == 0 for key in acknowledged)
    chaos_figures.messages_duplicated += sum(count > 1 for count in stored.values())
    assert len(acknowledged) >= CRASH_AFTER
    assert deployment.rows("PRAGMA integrity_check") == [("ok",)]
    assert all(stored[key] == 1 for key in acknowledged)
    assert all(count <= 1 for count in stored.values())
    for key, user_message_id in acknowledged.items():
        assert outcomes[key].status_code == 201
        assert outcomes[key].json()["user_message"]["id"] == user_message_id
    in_progress = [k for k, r in outcomes.items() if r.status_code == 409]
    assert {r.status_code for r in outcomes.values()} <= {201, 409}
    for key in in_progress:
        api.assert_user_visible_error(outcomes[key], 409)
        assert outcomes[key].json()["error"] == "in_progress"
    assert _undecryptable_tables(deployment) == 0
    assert deployment.audit_count("message_sent") >= len(acknowledged)
