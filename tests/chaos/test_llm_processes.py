"""The breaker and the rate limits are shared by separate server processes.

Two app servers (``python -m stepsync.serve``, as in production) run on one database,
and on one Redis when REDIS_URL is set: a breaker opened through the first stops
calls through the second without the LLM seeing a request, and 50 concurrent
messages spread over 2 servers x 2 workers (4 processes) let exactly the per-user
limit through. Redis runs skip with a plain message when no Redis answers on
127.0.0.1:6379, unless REQUIRE_REDIS=1 (then they fail).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.load import harness
from bench.load.client import ChatClient, Recorder, Reply, new_session
from tests.chaos import api
from tests.chaos.conftest import ChaosFigures, _copy_database
from tests.llm_server import Fault, LLMTestServer
from tests.phi_tripwire import find_canary

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

THRESHOLD = 5
LIMIT = 10
BURST = 50
REDIS_DB = 13


def redis_on_db(url: str) -> str:
    """The test Redis URL moved to a database of its own: servers use the default
    "stepsync:" prefix, which must not meet other tests' keys."""
    return url.rsplit("/", 1)[0] + f"/{REDIS_DB}"


def flush_app_keys(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match="stepsync:*"):
        client.delete(key)
    client.close()


@pytest.fixture(params=["database", "redis"])
def shared_state(request: pytest.FixtureRequest) -> Iterator[str]:
    """ "" for the database store, else a Redis URL (flushed before and after)."""
    if request.param == "database":
        yield ""
        return
    url = redis_on_db(request.getfixturevalue("redis_url"))
    flush_app_keys(url)
    yield url
    flush_app_keys(url)


@pytest.fixture
def cluster(
    tmp_path: Path, migrated_template: harness.AppConfig
) -> Iterator[Callable[..., list[harness.Server]]]:
    """Factory: ``cluster(servers, workers, llm_url, redis_url, extra)`` -> running
    servers on one database. On teardown they stop and their logs are scanned."""
    started: list[harness.Server] = []
    configs: list[harness.AppConfig] = []

    def start(
        *,
        servers: int,
        workers: int,
        llm_url: str = "",
        redis_url: str = "",
        extra: dict[str, str] | None = None,
    ) -> list[harness.Server]:
        config = harness.app_config(
            tmp_path / "cluster",
            llm_base_url=llm_url,
            redis_url=redis_url,
            extra={**harness.UNLIMITED, **(extra or {})},
            keys_from=migrated_template,
        )
        _copy_database(migrated_template, config)
        configs.append(config)
        for n in range(servers):
            server = harness.start_app(config, workers=workers, name=f"app{n + 1}")
            started.append(server)
        return started

    yield start
    for server in started:
        server.stop()
    logs = "\n".join(server.log_text() for server in started)
    assert "Traceback" not in logs
    assert not find_canary(logs)


def post_llm_message(base_url: str, token: str) -> dict:
    with api.client(base_url, token) as http:
        conversation = api.start_conversation(http)
        response = api.post_message(http, conversation, api.LLM_CANARY_TEXT)
    assert response.status_code == 201
    return dict(response.json()["reply"])


def test_a_breaker_opened_through_one_server_fails_fast_on_the_other(
    cluster: Callable[..., list[harness.Server]],
    shared_state: str,
    chaos_figures: ChaosFigures,
) -> None:
    llm = LLMTestServer().start()
    llm.set_default(Fault("status", status=503))
    try:
        first, second = cluster(
            servers=2,
            workers=1,
            llm_url=llm.base_url,
            redis_url=shared_state,
            extra={
                "LLM_MAX_RETRIES": "0",
                "CIRCUIT_BREAKER_FAILURE_THRESHOLD": str(THRESHOLD),
                "CIRCUIT_BREAKER_TIMEOUT_SECONDS": "600",
            },
        )
        config = harness.AppConfig(first.log_path.parent, first.env)
        token = harness.seed_users(config, count=1, prefix="brk")[0]["token"]
        opening = [post_llm_message(first.base_url, token) for _ in range(THRESHOLD)]
        calls_when_opened = llm.calls

        reply = post_llm_message(second.base_url, token)

        assert calls_when_opened == THRESHOLD
        assert llm.calls == calls_when_opened
    finally:
        llm.stop()
    outcomes = harness.db_rows(
        config, "SELECT outcome FROM chat_llmcall ORDER BY id DESC LIMIT 1"
    )
    transitions = harness.db_rows(
        config, "SELECT from_state, to_state, reason FROM chat_breakertransition"
    )
    chaos_figures.scenarios.append("breaker shared by 2 servers")
    chaos_figures.upstream_calls += llm.calls
    chaos_figures.breaker_transitions += len(transitions)
    chaos_figures.transitions_expected += 1
    chaos_figures.transitions_as_expected += transitions == [
        ("closed", "open", "consecutive_failures")
    ]
    chaos_figures.faults_injected += calls_when_opened
    assert {r["source"] for r in opening} == {"fallback"}
    assert (reply["source"], bool(reply["notice"])) == ("fallback", True)
    assert outcomes == [("breaker_open",)]
    assert transitions == [("closed", "open", "consecutive_failures")]


async def _burst(base_urls: list[str], token: str, conversation: int) -> list[Reply]:
    async with new_session(total_timeout=60) as session:

        async def one(n: int) -> Reply:
            url = base_urls[n % len(base_urls)]
            client = ChatClient(session, [url], Recorder(), token=token)
            return await client.send(
                conversation, kind="rules", text=api.CANARY_TEXT, key=f"proc-{n}"
            )

        return list(await asyncio.gather(*(one(n) for n in range(BURST))))


def test_fifty_concurrent_messages_over_four_processes_let_exactly_the_limit_through(
    cluster: Callable[..., list[harness.Server]],
    shared_state: str,
    chaos_figures: ChaosFigures,
) -> None:
    servers = cluster(
        servers=2,
        workers=2,
        redis_url=shared_state,
        extra={"RATE_LIMIT_MESSAGES_PER_MINUTE": str(LIMIT)},
    )
    config = harness.AppConfig(servers[0].log_path.parent, servers[0].env)
    token = harness.seed_users(config, count=1, prefix="rl")[0]["token"]
    with api.client(servers[0].base_url, token) as http:
        conversation = api.start_conversation(http)

    replies = asyncio.run(_burst([s.base_url for s in servers], token, conversation))

    statuses = Counter(r.status for r in replies)
    stored = harness.db_rows(
        config, "SELECT COUNT(*) FROM chat_message WHERE role = 'user'"
    )
    api.TALLY.observe_replies(servers[0].base_url, replies)
    chaos_figures.scenarios.append("limits across 4 processes")
    chaos_figures.faults_injected += statuses[429]
    chaos_figures.messages_accepted += statuses[201]
    chaos_figures.messages_lost += max(0, statuses[201] - int(stored[0][0]))
    chaos_figures.messages_duplicated += max(0, int(stored[0][0]) - statuses[201])
    assert statuses == {201: LIMIT, 429: BURST - LIMIT}
    assert stored == [(LIMIT,)]
