"""Chat use cases: the message pipeline (conversation use cases are re-exported).

PHI handling: raw user text goes to the sanitizer and nowhere else; only sanitized text
is stored (encrypted), sent on, or returned. Audit events carry ids, types and counts.
Transactions are short: no transaction is open while a reply is being produced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from chat import assistant, limits, notices, sanitizer
from chat.exceptions import (
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
from chat.turns import (
    MessageOutcome,
    ReplyDraft,
    TurnInput,
    idempotency_digest,
    replay,
    reply_write,
    user_turn_write,
)
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
    "rules_draft",
    "sessions_cleanup",
]

logger = logging.getLogger(__name__)


# (quick_reply, rules_reply) -> True when the rules' reply is the answer.
RulesAnswer = Callable[[str | None, assistant.AssistantReply], bool]


@dataclass(frozen=True)
class TurnStarted:
    """A stored user turn awaiting its reply (message_turn_begin's result)."""

    user_message: Message
    sanitized_text: str  # what was stored: sanitized text or the button's label
    quick_reply: str | None
    redactions: dict[str, int]
    rules_reply: assistant.AssistantReply
    conversation: Conversation  # where the turn was stored (see message_turn_begin)
    reserved: Any = None  # what message_turn_begin's ``reserve`` returned


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
    A turn sent to a closed (timed-out) conversation starts its successor and is
    stored there (``MessageOutcome.conversation_id``). Raises MessageInvalid (fixed
    reason code), PHIBlocked (types only; nothing stored; audited MESSAGE_BLOCKED),
    MessageInProgress (same idempotency key still being answered). A repeated
    ``idempotency_key`` returns the stored outcome without new rows. Only sanitized
    text is stored or returned.
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
        conversation=started.conversation,
        sanitized_text=started.sanitized_text,
        quick_reply=started.quick_reply,
        assistant_reply=started.rules_reply,
    )
    return message_turn_finish(
        user=user,
        conversation=started.conversation,
        turn=started,
        draft=draft,
        request=request,
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
    answer_from_rules: RulesAnswer | None = None,
    reserve: Callable[[], Any] | None = None,
) -> MessageOutcome | TurnStarted:
    """Phase 1 of a turn (all its DB work, no slow call): check, sanitize, store.

    Returns the stored MessageOutcome for a replayed idempotency key, else a
    TurnStarted holding the committed user message, the rule-based reply and the
    conversation that holds the turn: ``conversation`` itself, or its successor
    when it had closed (SESSION_TIMEOUT_HOURS idle) — callers must carry on with
    ``TurnStarted.conversation``. Raises like message_send. For the async path: run
    in one sync_to_async call.

    ``answer_from_rules(quick_reply, rules_reply)`` True means the rules' reply is
    the answer: it is stored with the turn, in the same write transaction, and
    the MessageOutcome is returned (one take of SQLite's write lock, not two).
    Otherwise ``reserve()``, when given, runs in that same transaction (the LLM
    call's limit slot) and its result is ``TurnStarted.reserved``.
    """
    if conversation.user_id != user.pk:
        raise PermissionDenied  # callers fetch through conversation_get_for_user
    key = idempotency_digest(idempotency_key)
    # A repeated key is found by the insert itself (the key is unique per
    # conversation): the common, new-key turn costs no lookup.
    turn = _turn_input(
        user=user,
        conversation=conversation,
        text=text,
        quick_reply=quick_reply,
        request=request,
    )
    # Answered before the write transaction (no CPU work under its lock); again
    # inside it only when the turn lands in a successor (another state).
    state = conversation.state
    rules = _rules_reply(conversation, turn)

    reserved = None

    def then(user_message: Message, holder: Conversation) -> MessageOutcome | None:
        nonlocal rules, reserved
        if holder.pk != conversation.pk or holder.state != state:
            rules = _rules_reply(holder, turn)
        if answer_from_rules is None or not answer_from_rules(turn.quick_reply, rules):
            reserved = reserve() if reserve is not None else None
            return None
        return message_turn_finish(
            user=user,
            conversation=holder,
            turn=_started(turn, user_message, rules, holder),
            draft=rules_draft(rules),
            request=request,
        )

    try:
        user_message, holder, answered = _turn_store(
            user, conversation, turn, key, request, then
        )
    except IntegrityError:
        # The key was stored already: by an earlier request (a client's retry) or
        # a concurrent one (perhaps in the successor of a conversation that closed
        # meanwhile).
        if key is None:
            raise
        conversation.refresh_from_db(fields=["status"])
        stored = replay(conversation, key)
        if stored is None:
            raise
        return stored
    return answered or _started(turn, user_message, rules, holder, reserved)


def _rules_reply(
    conversation: Conversation, turn: TurnInput
) -> assistant.AssistantReply:
    return assistant.respond(
        state=conversation.state or {}, text=turn.text, quick_reply=turn.quick_reply
    )


def _started(
    turn: TurnInput,
    user_message: Message,
    rules: assistant.AssistantReply,
    holder: Conversation,
    reserved: Any = None,
) -> TurnStarted:
    return TurnStarted(
        user_message=user_message,
        sanitized_text=turn.text,
        quick_reply=turn.quick_reply,
        redactions=turn.redactions,
        rules_reply=rules,
        conversation=holder,
        reserved=reserved,
    )


def rules_draft(reply: assistant.AssistantReply) -> ReplyDraft:
    """The rule-based reply as a draft to store (source "rules")."""
    return ReplyDraft(
        text=reply.text,
        quick_replies=quick_replies_json(reply),
        source=Message.Source.RULES,
        state=dict(reply.state),
    )


def _turn_store(
    user: Any,
    conversation: Conversation,
    turn: TurnInput,
    key: str | None,
    request: HttpRequest | None,
    then: Callable[[Message, Conversation], MessageOutcome | None],
) -> tuple[Message, Conversation, MessageOutcome | None]:
    """One write transaction: store the turn, count it, audit a successor, and
    whatever ``then`` adds (the rules' reply, when that is the answer)."""
    with transaction.atomic():
        user_message, holder = user_turn_write(conversation, turn, key)
        # Every stored message counts (RATE_LIMIT_MESSAGES_PER_MINUTE), in the
        # transaction that stores it (a refusal rolls the turn back); a replay
        # (IntegrityError above) does not.
        limits.message_rate_check(user_id=user.pk)
        if holder.pk != conversation.pk:
            audit_record(
                action=AuditAction.CONVERSATION_CREATE,
                actor=user,
                target_type="conversation",
                target_id=holder.pk,
                details={"continued_from": conversation.pk},
                request=request,
            )
        answered = then(user_message, holder)
    return user_message, holder, answered


def message_turn_finish(
    *,
    user: Any,
    conversation: Conversation,
    turn: TurnStarted,
    draft: ReplyDraft,
    request: HttpRequest | None = None,
) -> MessageOutcome:
    """Phase 3 of a turn: store the reply and the new assistant state; audit.

    One short transaction (the caller's, when one is open: no savepoint), so the
    reply and its MESSAGE_SENT event commit together; updates
    ``conversation.state`` / ``last_activity_at``.
    """
    with transaction.atomic(savepoint=False):
        reply = reply_write(conversation, turn.user_message, draft)
        _audit_sent(user, conversation, turn.user_message, reply, request)
    return MessageOutcome(
        turn.user_message, reply, notice=notices.redaction_notice(turn.redactions)
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
    return rules_draft(assistant_reply)


@sensitive_variables("text")
def _turn_input(
    *,
    user: Any,
    conversation: Conversation,
    text: str | None,
    quick_reply: str | None,
    request: HttpRequest | None,
) -> TurnInput:
    if (text is None) == (quick_reply is None):
        raise MessageInvalid("one_of", "text")
    if quick_reply is not None:
        if not isinstance(quick_reply, str) or not assistant.is_quick_reply(
            quick_reply
        ):
            raise MessageInvalid("unknown_quick_reply", "quick_reply")
        label = quick_reply_label(conversation=conversation, value=quick_reply)
        return TurnInput(label, {}, quick_reply)
    cleaned = clean_user_text(text, max_chars=settings.MAX_MESSAGE_CHARS)
    strict = settings.PHI_SANITIZER_STRICT_MODE
    critical = frozenset(settings.PHI_CRITICAL_TYPES)
    result = sanitizer.sanitize(cleaned, strict=strict, critical_types=critical)
    if result.blocked:
        # A refused message counts too (and a limited one is not audited).
        limits.message_rate_check(user_id=user.pk)
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
    return TurnInput(result.text, dict(result.counts), None)


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
