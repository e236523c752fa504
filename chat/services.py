"""Chat use cases: the message pipeline (conversation use cases are re-exported).

PHI handling: raw user text goes to the sanitizer and nowhere else; only sanitized text
is stored (encrypted), sent on, or returned. Audit events carry ids, types and counts.
Transactions are short: no transaction is open while a reply is being produced.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from chat import assistant, limits, sanitizer
from chat.exceptions import (
    ConversationClosed,
    MessageInProgress,
    MessageInvalid,
    PHIBlocked,
)
from chat.knowledge import KB
from chat.models import Conversation, Message
from chat.services_conversations import (
    CLEANUP_PRINCIPAL,
    TITLE_MAX_CHARS,
    conversation_context,
    conversation_delete,
    conversation_export_for_user,
    conversation_open,
    conversation_rename,
    conversation_start,
    quick_replies_json,
    sessions_cleanup,
)
from chat.textinput import clean_user_text
from compliance.models import AuditAction
from compliance.services import audit_record

__all__ = [
    "CLEANUP_PRINCIPAL",
    "TITLE_MAX_CHARS",
    "MessageOutcome",
    "ReplyDraft",
    "TurnStarted",
    "conversation_context",
    "conversation_delete",
    "conversation_export_for_user",
    "conversation_open",
    "conversation_rename",
    "conversation_start",
    "idempotency_digest",
    "message_send",
    "message_turn_begin",
    "message_turn_finish",
    "quick_reply_label",
    "redaction_notice",
    "sessions_cleanup",
]

logger = logging.getLogger(__name__)

# A user turn with no reply after this long is finished from the rules on replay.
STALE_TURN_SECONDS = 120


@dataclass(frozen=True)
class MessageOutcome:
    """What one user turn produced; ``notice`` tells the user what was removed."""

    user_message: Message
    reply: Message
    notice: str = ""
    blocked_types: tuple[str, ...] = ()
    replayed: bool = False


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
class TurnStarted:
    """A stored user turn awaiting its reply (message_turn_begin's result)."""

    user_message: Message
    sanitized_text: str  # what was stored: sanitized text or the button's label
    quick_reply: str | None
    redactions: dict[str, int]
    rules_reply: assistant.AssistantReply


@dataclass(frozen=True)
class _TurnInput:
    text: str  # sanitized text (or the button's label) — what is stored
    redactions: dict[str, int]
    quick_reply: str | None


@sensitive_variables("text")
def message_send(
    *,
    user: Any,
    conversation: Conversation,
    text: str | None = None,
    quick_reply: str | None = None,
    idempotency_key: str | None = None,
    request: HttpRequest | None = None,
) -> MessageOutcome:
    """Handle one user turn: validate, sanitize, store, answer, store, audit.

    Exactly one of ``text`` / ``quick_reply`` (a button value, routed by value).
    Raises MessageInvalid (fixed reason code), PHIBlocked (types only; nothing
    stored; audited MESSAGE_BLOCKED), ConversationClosed, MessageInProgress (same
    idempotency key still being answered). A repeated ``idempotency_key`` returns
    the stored outcome without new rows. Only sanitized text is stored or returned.
    """
    started = message_turn_begin(
        user=user,
        conversation=conversation,
        text=text,
        quick_reply=quick_reply,
        idempotency_key=idempotency_key,
        request=request,
    )
    if isinstance(started, MessageOutcome):
        return started
    draft = _reply_for(
        conversation=conversation,
        sanitized_text=started.sanitized_text,
        quick_reply=started.quick_reply,
        assistant_reply=started.rules_reply,
    )
    return message_turn_finish(
        user=user, conversation=conversation, turn=started, draft=draft, request=request
    )


@sensitive_variables("text")
def message_turn_begin(
    *,
    user: Any,
    conversation: Conversation,
    text: str | None = None,
    quick_reply: str | None = None,
    idempotency_key: str | None = None,
    request: HttpRequest | None = None,
) -> MessageOutcome | TurnStarted:
    """Phase 1 of a turn (all its DB work, no slow call): check, sanitize, store.

    Returns the stored MessageOutcome for a replayed idempotency key, else a
    TurnStarted holding the committed user message and the rule-based reply. Raises
    like message_send. For the async path: run in one sync_to_async call.
    """
    if conversation.user_id != user.pk:
        raise PermissionDenied  # callers fetch through conversation_get_for_user
    key = idempotency_digest(idempotency_key)
    if key is not None:
        replay = _replay(conversation, key)
        if replay is not None:
            return replay
    # Every message counts (RATE_LIMIT_MESSAGES_PER_MINUTE); a replay above does not.
    limits.message_rate_check(user_id=user.pk)
    if conversation.status == Conversation.Status.CLOSED:
        raise ConversationClosed()
    turn = _turn_input(
        user=user,
        conversation=conversation,
        text=text,
        quick_reply=quick_reply,
        request=request,
    )
    try:
        user_message, state = _user_turn_write(conversation, turn, key)
    except IntegrityError:
        # A concurrent request with the same key won the insert.
        replay = _replay(conversation, key) if key is not None else None
        if replay is None:
            raise
        return replay
    rules = assistant.respond(state=state, text=turn.text, quick_reply=turn.quick_reply)
    return TurnStarted(
        user_message=user_message,
        sanitized_text=turn.text,
        quick_reply=turn.quick_reply,
        redactions=turn.redactions,
        rules_reply=rules,
    )


def message_turn_finish(
    *,
    user: Any,
    conversation: Conversation,
    turn: TurnStarted,
    draft: ReplyDraft,
    request: HttpRequest | None = None,
) -> MessageOutcome:
    """Phase 3 of a turn: store the reply and the new assistant state; audit.

    One short transaction; updates ``conversation.state`` / ``last_activity_at``.
    """
    reply = _reply_write(conversation, turn.user_message, draft)
    _audit_sent(user, conversation, turn.user_message, reply, request)
    return MessageOutcome(
        turn.user_message, reply, notice=redaction_notice(turn.redactions)
    )


def _reply_for(
    *,
    conversation: Conversation,
    sanitized_text: str,
    quick_reply: str | None,
    assistant_reply: assistant.AssistantReply,
) -> ReplyDraft:
    """THE SEAM for the LLM branch: choose the reply to a stored user turn.

    Called with no transaction open, after the user message is committed. Today it
    always returns the rule-based reply (source "rules"). The LLM pipeline replaces
    the "not confident" branch: when ``quick_reply is None`` and
    ``assistant_reply.confident`` is False and an LLM is configured, call the LLM
    with ``conversation_context(conversation=...)`` and return source "llm", or the
    rules reply with source "fallback" and a notice when the LLM is unavailable.
    """
    from chat import llm_pipeline  # the LLM branch (imports this module)

    draft = llm_pipeline.reply_draft_sync(
        conversation=conversation,
        sanitized_text=sanitized_text,
        quick_reply=quick_reply,
        assistant_reply=assistant_reply,
    )
    if draft is not None:
        return draft
    return ReplyDraft(
        text=assistant_reply.text,
        quick_replies=quick_replies_json(assistant_reply),
        source=Message.Source.RULES,
        state=dict(assistant_reply.state),
    )


def idempotency_digest(key: str | None) -> str | None:
    """SHA-256 hex of a client's idempotency key (the raw header is never stored)."""
    if key is None or key == "":
        return None
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


@sensitive_variables("text")
def _turn_input(
    *,
    user: Any,
    conversation: Conversation,
    text: str | None,
    quick_reply: str | None,
    request: HttpRequest | None,
) -> _TurnInput:
    if (text is None) == (quick_reply is None):
        raise MessageInvalid("one_of", "text")
    if quick_reply is not None:
        if not isinstance(quick_reply, str) or not assistant.is_quick_reply(
            quick_reply
        ):
            raise MessageInvalid("unknown_quick_reply", "quick_reply")
        label = quick_reply_label(conversation=conversation, value=quick_reply)
        return _TurnInput(label, {}, quick_reply)
    cleaned = clean_user_text(text, max_chars=settings.MAX_MESSAGE_CHARS)
    strict = settings.PHI_SANITIZER_STRICT_MODE
    critical = frozenset(settings.PHI_CRITICAL_TYPES)
    result = sanitizer.sanitize(cleaned, strict=strict, critical_types=critical)
    if result.blocked:
        types = tuple(sorted(result.blocked_types or result.counts))
        audit_record(
            action=AuditAction.MESSAGE_BLOCKED,
            actor=user,
            target_type="conversation",
            target_id=conversation.pk,
            outcome="blocked",
            details={"types": list(types), **_count_details(result.counts)},
            request=request,
        )
        raise PHIBlocked(types)
    return _TurnInput(result.text, dict(result.counts), None)


def quick_reply_label(*, conversation: Conversation, value: str) -> str:
    """The label the user saw on the button with ``value`` (stored as their text)."""
    last = (
        conversation.messages.filter(role=Message.Role.ASSISTANT)
        .order_by("-created_at", "-id")
        .values_list("quick_replies", flat=True)
        .first()
    )
    for item in last or []:
        if isinstance(item, dict) and item.get("value") == value:
            return str(item.get("label") or value)
    definition = KB.quick_replies.get(value)
    return definition.label if definition is not None else value


def _user_turn_write(
    conversation: Conversation, turn: _TurnInput, key: str | None
) -> tuple[Message, dict[str, Any]]:
    """One short transaction: lock the conversation, re-check it, store the turn."""
    now = timezone.now()
    expired = False
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.status == Conversation.Status.ACTIVE and not locked.is_open(now):
            locked.status = Conversation.Status.CLOSED
            locked.closed_at = now
            locked.save(update_fields=["status", "closed_at", "updated_at"])
            expired = True
        elif locked.status == Conversation.Status.ACTIVE:
            message = Message.objects.create(
                conversation=locked,
                role=Message.Role.USER,
                text=turn.text,
                redactions=turn.redactions,
                idempotency_key=key,
                created_at=now,
            )
            locked.last_activity_at = now
            locked.save(update_fields=["last_activity_at", "updated_at"])
            conversation.state = dict(locked.state or {})
            conversation.last_activity_at = now
            return message, dict(locked.state or {})
    conversation.status = Conversation.Status.CLOSED
    if expired:
        conversation.closed_at = now
    raise ConversationClosed()


def _reply_write(
    conversation: Conversation, user_message: Message, draft: ReplyDraft
) -> Message:
    now = timezone.now()
    with transaction.atomic():
        reply = Message.objects.create(
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
        Conversation.objects.filter(pk=conversation.pk).update(
            state=draft.state, last_activity_at=now, updated_at=now
        )
    conversation.state = draft.state
    conversation.last_activity_at = now
    return reply


def _replay(conversation: Conversation, key: str) -> MessageOutcome | None:
    """The stored outcome for an idempotency key, or None when the key is new."""
    user_message = Message.objects.filter(
        conversation=conversation, role=Message.Role.USER, idempotency_key=key
    ).first()
    if user_message is None:
        return None
    reply = user_message.replies.order_by("id").first()
    if reply is None:
        age = (timezone.now() - user_message.created_at).total_seconds()
        if age < STALE_TURN_SECONDS:
            raise MessageInProgress()
        reply = _finish_stale_turn(conversation, user_message)
    notice = redaction_notice(user_message.redactions or {})
    return MessageOutcome(user_message, reply, notice=notice, replayed=True)


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
    return _reply_write(conversation, user_message, draft)


def redaction_notice(counts: dict[str, int]) -> str:
    """A fixed-form notice naming the removed identifier types (never values)."""
    if not counts:
        return ""
    parts = ", ".join(f"{kind} ({n})" for kind, n in sorted(counts.items()))
    return f"Identifiers were removed from your message before it was stored: {parts}."


def _count_details(counts: dict[str, int]) -> dict[str, int]:
    details = {f"redacted_{kind.lower()}": int(n) for kind, n in counts.items()}
    details["redactions"] = sum(int(n) for n in counts.values())
    return details


def _audit_sent(
    user: Any,
    conversation: Conversation,
    user_message: Message,
    reply: Message,
    request: HttpRequest | None,
) -> None:
    counts = dict(user_message.redactions or {})
    audit_record(
        action=AuditAction.MESSAGE_SENT,
        actor=user,
        target_type="conversation",
        target_id=conversation.pk,
        details={
            "message_id": user_message.pk,
            "reply_id": reply.pk,
            "source": reply.source,
            "redaction_types": sorted(counts),
            **_count_details(counts),
        },
        request=request,
    )
    logger.info(
        "chat.message conversation=%s message=%s source=%s redactions=%d",
        conversation.pk,
        user_message.pk,
        reply.source,
        sum(counts.values()),
    )
