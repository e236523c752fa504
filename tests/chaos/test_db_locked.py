"""RELIABILITY.md §2.1 #16: the database is locked past the busy timeout."""

from __future__ import annotations

import pytest

from bench.load import harness
from tests.chaos import api
from tests.chaos.conftest import ChaosFigures

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.sqlcipher_only]


def test_a_locked_database_gives_503_and_a_retry_with_the_same_key_stores_once(
    deploy, chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(workers=1, llm=False, extra={"DATABASE_BUSY_TIMEOUT_MS": "300"})
    token = deployment.users(1)[0]["token"]
    key = "locked-retry-1"
    with api.client(deployment.base_url, token) as http:
        conversation = api.start_conversation(http)
        locker = harness.db_connect(deployment.config)
        locker.execute("BEGIN IMMEDIATE")
        try:
            refused = api.post_message(http, conversation, api.CANARY_TEXT, key=key)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        retried = api.post_message(http, conversation, api.CANARY_TEXT, key=key)
        again = api.post_message(http, conversation, api.CANARY_TEXT, key=key)

    stored = api.stored_user_messages(deployment, key)
    chaos_figures.scenarios.append("16 db locked")
    chaos_figures.faults_injected += 1
    chaos_figures.messages_accepted += retried.status_code == 201
    chaos_figures.messages_lost += stored == 0
    chaos_figures.messages_duplicated += stored > 1
    api.assert_user_visible_error(refused, 503)
    assert retried.status_code == 201
    assert again.status_code == 201
    assert again.json()["user_message"]["id"] == retried.json()["user_message"]["id"]
    assert stored == 1
    assert deployment.audit_count("message_sent") == 1
    assert "Traceback" not in deployment.logs()


def test_a_locked_database_never_answers_500_to_a_burst(
    deploy, chaos_figures: ChaosFigures
) -> None:
    deployment = deploy(workers=2, llm=False, extra={"DATABASE_BUSY_TIMEOUT_MS": "200"})
    token = deployment.users(1)[0]["token"]
    keys = [f"burst-{n}" for n in range(6)]
    with api.client(deployment.base_url, token) as http:
        conversation = api.start_conversation(http)
        locker = harness.db_connect(deployment.config)
        locker.execute("BEGIN IMMEDIATE")
        try:
            during = [api.post_message(http, conversation, key=key) for key in keys]
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        after = [api.post_message(http, conversation, key=key) for key in keys]

    stored = [api.stored_user_messages(deployment, key) for key in keys]
    chaos_figures.faults_injected += len(during)
    chaos_figures.messages_accepted += sum(r.status_code == 201 for r in after)
    chaos_figures.messages_lost += stored.count(0)
    chaos_figures.messages_duplicated += sum(count > 1 for count in stored)
    assert {r.status_code for r in during} == {503}
    for response in during:
        api.assert_user_visible_error(response, 503)
    assert [r.status_code for r in after] == [201] * len(keys)
    assert stored == [1] * len(keys)
