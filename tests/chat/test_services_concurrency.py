from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from chat.exceptions import MessageInProgress
from chat.models import Conversation, Message
from chat.services import conversation_start, message_send, sessions_cleanup

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_audit_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # Audit rows are append-only (database triggers), so a transaction=True test
    # that wrote any could not flush its database afterwards. Audit is covered
    # by the non-threaded tests.
    for module in ("chat.services", "chat.services_conversations"):
        monkeypatch.setattr(f"{module}.audit_record", lambda **kwargs: None)


def run_in_threads(*targets: Callable[[], Any]) -> list[Any]:
    """Start all targets together; return each result or exception, in order."""
    barrier = threading.Barrier(len(targets))
    results: list[Any] = [None] * len(targets)

    def runner(index: int, target: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = target()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=runner, args=(i, t)) for i, t in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_concurrent_posts_with_one_idempotency_key_store_one_turn(
    patient: Any,
) -> None:
    conversation = conversation_start(user=patient)

    def send() -> Any:
        return message_send(
            user=patient,
            conversation=Conversation.objects.get(pk=conversation.pk),
            text="my fitbit steps are missing",
            idempotency_key="same-key",
        )

    results = run_in_threads(send, send)

    for result in results:
        assert not isinstance(result, Exception) or isinstance(
            result, MessageInProgress
        ), type(result).__name__
    assert conversation.messages.filter(role="user").count() == 1
    assert conversation.messages.filter(role="assistant").count() == 2
    outcomes = [r for r in results if not isinstance(r, Exception)]
    assert len({o.user_message.pk for o in outcomes}) == 1


def test_cleanup_running_while_users_chat_loses_no_message(
    patient: Any, settings: Any
) -> None:
    settings.SESSION_TIMEOUT_HOURS = 1
    old = timezone.now() - timedelta(hours=2)
    expired = [conversation_start(user=patient) for _ in range(12)]
    Conversation.objects.filter(pk__in=[c.pk for c in expired]).update(
        last_activity_at=old
    )
    live = [conversation_start(user=patient) for _ in range(3)]

    def chat(conversation: Conversation) -> Callable[[], int]:
        def send() -> int:
            for n in range(5):
                message_send(
                    user=patient, conversation=conversation, text=f"garmin {n}"
                )
            return 5

        return send

    def cleanup() -> int:
        return sum(sessions_cleanup(now=timezone.now(), batch_size=2) for _ in range(3))

    results = run_in_threads(cleanup, *(chat(c) for c in live))

    assert results[0] == 12
    assert results[1:] == [5, 5, 5]
    for conversation in live:
        conversation.refresh_from_db()
        assert conversation.status == "active"
        assert conversation.messages.filter(role="user").count() == 5
        assert conversation.messages.filter(role="assistant").count() == 6
    assert Conversation.objects.filter(status="closed").count() == 12
    assert Message.objects.count() == 15 + 3 * 10
