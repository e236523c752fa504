"""Storing conversation turns: the user's turn (continuing a closed conversation in
its successor), the assistant's reply, and idempotent replays of a repeated key.

Each write is one short transaction, or part of the caller's (no savepoint); only
sanitized text reaches these functions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from chat import assistant, notices
from chat.exceptions import ConversationClosed, MessageInProgress
from chat.models import Conversation, Message
from chat.models.conversation import session_cutoff
from chat.services_conversations import quick_replies_json
from stepsync.db import statements

# A user turn with no reply after this long is finished from the rules on replay.
STALE_TURN_SECONDS = 120
# Successors followed from a closed conversation before giving up (each successor
# is created on demand, so a chain longer than one only forms across timeouts).
MAX_CONTINUATIONS = 20
# A user turn moves the conversation's activity mark when it is older than this
# (or than a tenth of the idle timeout); the reply moves it on every turn.
TOUCH_AFTER_SECONDS = 300


@dataclass(frozen=True)
class MessageOutcome:
    """What one user turn produced; ``notice`` tells the user what was removed."""

    user_message: Message
    reply: Message
    notice: str = ""
    replayed: bool = False

    @property
    def conversation_id(self) -> int:
        """The conversation holding the turn (a successor when the one asked for
        had closed)."""
        return int(self.user_message.conversation_id)


@dataclass(frozen=True)
class ReplyDraft:
    """An assistant reply before it is stored (text is already safe to store)."""

    text: str
    quick_replies: list[dict[str, str]]
    source: str
    state: dict[str, Any]
    notice: str = ""
    status: str = Message.Status.COMPLETE


@dataclass(frozen=True)
class TurnInput:
    """What a user turn stores: sanitized text (or a button's label), the counts
    of what was removed, and the button value when a button was pressed."""

    text: str
    redactions: dict[str, int]
    quick_reply: str | None


def idempotency_digest(key: str | None) -> str | None:
    """SHA-256 hex of a client's idempotency key (the raw header is never stored)."""
    if key is None or key == "":
        return None
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def user_turn_write(
    conversation: Conversation, turn: TurnInput, key: str | None
) -> tuple[Message, Conversation]:
    """One short transaction: lock the conversation, re-check it, store the turn.

    An open conversation is touched and locked by one conditional UPDATE (its
    ``state`` stays as the caller read it). A conversation idle past the timeout is
    closed here (cleanup may not have run yet); a turn for a closed conversation goes
    to its successor, created on first use (one successor per conversation: the row
    lock and the one-to-one key keep concurrent turns together). Returns the message and the conversation holding it.
    """
    now = timezone.now()
    with transaction.atomic(savepoint=False):  # joins a caller's transaction
        if _touch_if_open(conversation, now):
            # The common case: one conditional UPDATE locks the open conversation.
            return _store_turn(conversation, turn, key, now), conversation
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.status == Conversation.Status.ACTIVE and not locked.is_open(now):
            locked.status = Conversation.Status.CLOSED
            locked.closed_at = now
            locked.save(update_fields=["status", "closed_at", "updated_at"])
            conversation.status, conversation.closed_at = locked.status, now
        holder = locked
        for _ in range(MAX_CONTINUATIONS):
            if holder.status == Conversation.Status.ACTIVE:
                break
            holder = _successor(holder, now)
        else:
            raise ConversationClosed()
        holder.last_activity_at = holder.updated_at = now
        Conversation.objects.filter(pk=holder.pk).update(
            last_activity_at=now, updated_at=now
        )
        message = _store_turn(holder, turn, key, now)
    if holder.pk == conversation.pk:
        conversation.state = dict(holder.state or {})
        conversation.last_activity_at = now
        return message, conversation
    return message, holder


def _touch_if_open(conversation: Conversation, now: Any) -> bool:
    """Mark activity on ``conversation`` if it is still open, in one UPDATE that
    also takes its row lock (the write lock on SQLite); False when it closed or
    timed out (the caller then takes the slow path under select_for_update).

    ``last_activity_at`` moves only when ``_touch_due`` says it is old: the
    turn's reply sets it again moments later (reply_write), and leaving it as it
    is spares the two activity indexes a page write each per turn. ``updated_at``
    (not indexed) always moves, so the UPDATE still locks the row."""
    touched_fields = {"updated_at": now}
    if _touch_due(conversation, now):
        touched_fields["last_activity_at"] = now
    touched = statements.update(
        Conversation,
        touched_fields,
        [
            ("id", "=", conversation.pk),
            ("status", "=", Conversation.Status.ACTIVE),
            ("last_activity_at", ">=", session_cutoff(now)),
        ],
    )
    if touched:
        for name, value in touched_fields.items():
            setattr(conversation, name, value)
    return bool(touched)


def _touch_due(conversation: Conversation, now: Any) -> bool:
    """Whether the activity mark is older than a tenth of the idle timeout (at
    most TOUCH_AFTER_SECONDS): far enough from the timeout that a turn whose
    reply is still coming cannot be closed as idle meanwhile."""
    last = conversation.last_activity_at
    if last is None:
        return True
    timeout = settings.SESSION_TIMEOUT_HOURS * 3600
    return (now - last).total_seconds() >= min(TOUCH_AFTER_SECONDS, timeout / 10)


def _store_turn(
    holder: Conversation, turn: TurnInput, key: str | None, now: Any
) -> Message:
    message = Message(
        conversation=holder,
        role=Message.Role.USER,
        text=turn.text,
        redactions=turn.redactions,
        idempotency_key=key,
        created_at=now,
    )
    return statements.insert(message)


def _successor(closed: Conversation, now: Any) -> Conversation:
    """The conversation that continues ``closed`` (locked), created when absent."""
    found = (
        Conversation.objects.select_for_update().filter(continued_from=closed).first()
    )
    if found is not None:
        if found.status == Conversation.Status.ACTIVE and not found.is_open(now):
            found.status, found.closed_at = Conversation.Status.CLOSED, now
            found.save(update_fields=["status", "closed_at", "updated_at"])
        return found
    return Conversation.objects.create(
        user_id=closed.user_id,
        continued_from=closed,
        state=dict(assistant.welcome().state),
        created_at=now,
        last_activity_at=now,
    )


def reply_write(
    conversation: Conversation, user_message: Message, draft: ReplyDraft
) -> Message:
    now = timezone.now()
    with transaction.atomic(savepoint=False):  # joins a caller's transaction
        reply = Message(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            text=draft.text,
            quick_replies=draft.quick_replies,
            source=draft.source,
            status=draft.status,
            notice=draft.notice,
            in_reply_to=user_message,
            created_at=max(now, user_message.created_at),
        )
        statements.insert(reply)
        statements.update(
            Conversation,
            {"state": draft.state, "last_activity_at": now, "updated_at": now},
            [("id", "=", conversation.pk)],
        )
    conversation.state = draft.state
    conversation.last_activity_at = now
    return reply


def replay(conversation: Conversation, key: str) -> MessageOutcome | None:
    """The stored outcome for an idempotency key, or None when the key is new.

    The key is looked up in the conversation and along its successors, where a
    turn sent after it closed was stored. An active conversation has none (one
    query); a turn racing its close finds the key through the IntegrityError path
    (message_turn_begin refreshes the status and asks again).
    """
    chain = [conversation.pk]
    if conversation.status != Conversation.Status.ACTIVE:
        chain += _successors(conversation.pk)
    found = Message.objects.filter(
        conversation_id__in=chain, role=Message.Role.USER, idempotency_key=key
    )
    # The key is unique per conversation: with one conversation, get() needs no
    # ORDER BY (which costs as much to compile as the rest of the query).
    user_message = found.first() if len(chain) > 1 else _one(found)
    if user_message is None:
        return None
    reply = user_message.replies.order_by("id").first()
    if reply is None:
        age = (timezone.now() - user_message.created_at).total_seconds()
        if age < STALE_TURN_SECONDS:
            raise MessageInProgress()
        reply = _finish_stale_turn(user_message.conversation, user_message)
    notice = notices.redaction_notice(user_message.redactions or {})
    return MessageOutcome(user_message, reply, notice=notice, replayed=True)


def _one(found: QuerySet[Message]) -> Message | None:
    try:
        return found.get()
    except Message.DoesNotExist:
        return None


def _successors(pk: int) -> list[int]:
    chain = [pk]
    for _ in range(MAX_CONTINUATIONS):
        nxt = Conversation.objects.filter(continued_from_id=chain[-1]).values_list(
            "pk", flat=True
        )
        if not nxt:
            break
        chain.append(nxt[0])
    return chain[1:]


def _finish_stale_turn(conversation: Conversation, user_message: Message) -> Message:
    # The process answering this turn died; answer it from the rules so the
    # client's retry gets a reply instead of "in progress" forever.
    conversation.refresh_from_db(fields=["state"])
    rules = assistant.fallback(state=conversation.state or {}, text=user_message.text)
    draft = ReplyDraft(
        text=rules.text,
        quick_replies=quick_replies_json(rules),
        source=Message.Source.FALLBACK,
        state=dict(rules.state),
    )
    return reply_write(conversation, user_message, draft)
