"""Conversation use cases: start, rename, delete, open, export, context, cleanup.

PHI handling: titles are sanitized like messages; exports hold only the user's own
sanitized data; audit events carry ids and counts only.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from chat import assistant, sanitizer
from chat.exceptions import ConversationOnHold
from chat.models import Conversation, Message
from chat.models.conversation import session_cutoff
from chat.textinput import clean_user_text
from compliance.models import AuditAction
from compliance.services import audit_record
from stepsync.db import statements

logger = logging.getLogger(__name__)

TITLE_MAX_CHARS = 80
CLEANUP_BATCH_SIZE = 500
CLEANUP_PRINCIPAL = "job:cleanup_sessions"


def _clean_title(title: str) -> str:
    """Sanitize (redact) and cap a user-typed title; empty is allowed."""
    if not title or not title.strip():
        return ""
    cleaned = clean_user_text(title, max_chars=10_000, field="title")
    result = sanitizer.sanitize(cleaned)
    if result.blocked:
        return ""
    return result.text[:TITLE_MAX_CHARS].strip()


def quick_replies_json(reply: assistant.AssistantReply) -> list[dict[str, str]]:
    return [{"label": q.label, "value": q.value} for q in reply.quick_replies]


@sensitive_variables("title")
def conversation_start(
    *, user: Any, title: str = "", request: HttpRequest | None = None
) -> Conversation:
    """Create an active conversation whose first message is the assistant's welcome.

    The title is sanitized and capped at TITLE_MAX_CHARS. Audits CONVERSATION_CREATE
    in the same transaction.
    """
    welcome = assistant.welcome()
    now = timezone.now()
    with transaction.atomic():
        conversation = Conversation.objects.create(
            user=user,
            title=_clean_title(title),
            state=dict(welcome.state),
            created_at=now,
            last_activity_at=now,
        )
        Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            text=welcome.text,
            quick_replies=quick_replies_json(welcome),
            source=Message.Source.RULES,
            created_at=now,
        )
        # In the same transaction: no conversation without its audit row, and
        # one commit instead of two.
        _audit(AuditAction.CONVERSATION_CREATE, user, conversation, request)
    return conversation


@sensitive_variables("title")
def conversation_rename(
    *,
    user: Any,
    conversation: Conversation,
    title: str,
    request: HttpRequest | None = None,
) -> Conversation:
    """Set the title (sanitized, capped); audits CONVERSATION_RENAME."""
    conversation.title = _clean_title(title)
    conversation.save(update_fields=["title", "updated_at"])
    _audit(AuditAction.CONVERSATION_RENAME, user, conversation, request)
    return conversation


def conversation_delete(
    *, user: Any, conversation: Conversation, request: HttpRequest | None = None
) -> None:
    """Delete a conversation and its messages; raises ConversationOnHold under hold."""
    if conversation.legal_hold:
        raise ConversationOnHold()
    pk = conversation.pk
    count = conversation.messages.count()
    conversation.delete()
    audit_record(
        action=AuditAction.CONVERSATION_DELETE,
        actor=user,
        target_type="conversation",
        target_id=pk,
        details={"messages": count},
        request=request,
    )


def conversation_open(
    *, user: Any, conversation: Conversation, request: HttpRequest | None = None
) -> list[Message]:
    """The conversation's messages in order, for showing them; audits VIEW."""
    messages = list(conversation.messages.order_by("created_at", "id"))
    _audit(AuditAction.CONVERSATION_VIEW, user, conversation, request)
    return messages


def conversation_context(*, conversation: Conversation) -> list[dict[str, str]]:
    """The last MAX_MESSAGES_PER_SESSION complete messages as ``{role, content}``.

    Oldest first; text is the stored sanitized text (safe to send to the LLM).
    """
    rows = statements.select_rows(
        Message,
        ("role", "text"),
        [
            ("conversation", "=", conversation.pk),
            ("status", "=", Message.Status.COMPLETE),
        ],
        order_by=("-created_at", "-id"),
        limit=settings.MAX_MESSAGES_PER_SESSION,
    )
    return [{"role": role, "content": text} for role, text in reversed(rows)]


def _message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "role": message.role,
        "text": message.text,
        "redactions": dict(message.redactions or {}),
        "source": message.source,
        "status": message.status,
        "notice": message.notice,
        "quick_replies": list(message.quick_replies or []),
        "created_at": message.created_at.isoformat(),
    }


def conversation_export_for_user(
    *,
    user: Any,
    conversation: Conversation | None = None,
    request: HttpRequest | None = None,
) -> dict[str, Any]:
    """All of the user's own data (or one of their conversations) as a JSON dict.

    Holds the account basics, conversations and messages (sanitized text, redaction
    counts, sources, timestamps). Audits CONVERSATION_EXPORT with counts.
    """
    conversations = Conversation.objects.filter(user=user).order_by("created_at", "id")
    if conversation is not None:
        conversations = conversations.filter(pk=conversation.pk)
    messages: dict[int, list[dict[str, Any]]] = {}
    for message in Message.objects.filter(conversation__in=conversations).order_by(
        "created_at", "id"
    ):
        messages.setdefault(message.conversation_id, []).append(_message_json(message))
    items = [
        {
            "id": c.pk,
            "title": c.title,
            "status": c.effective_status,
            "created_at": c.created_at.isoformat(),
            "last_activity_at": c.last_activity_at.isoformat(),
            "closed_at": c.closed_at.isoformat() if c.closed_at else None,
            "messages": messages.get(c.pk, []),
        }
        for c in conversations
    ]
    audit_record(
        action=AuditAction.CONVERSATION_EXPORT,
        actor=user,
        target_type="conversation" if conversation is not None else "user",
        target_id=conversation.pk if conversation is not None else user.pk,
        details={
            "conversations": len(items),
            "messages": sum(len(m) for m in messages.values()),
        },
        request=request,
    )
    return {
        "exported_at": timezone.now().isoformat(),
        "account": _account_json(user),
        "conversations": items,
    }


def _account_json(user: Any) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "date_joined": user.date_joined.isoformat(),
        "last_login": user.last_login.isoformat() if user.last_login else None,
    }


def _audit(
    action: AuditAction,
    user: Any,
    conversation: Conversation,
    request: HttpRequest | None,
) -> None:
    audit_record(
        action=action,
        actor=user,
        target_type="conversation",
        target_id=conversation.pk,
        request=request,
    )


# --- Cleanup --------------------------------------------------------------------


def sessions_cleanup(*, now: datetime, batch_size: int = CLEANUP_BATCH_SIZE) -> int:
    """Close active conversations idle past SESSION_TIMEOUT_HOURS; return the count.

    Idempotent and safe while users chat: each batch is a conditional UPDATE that
    only closes rows whose last_activity_at is still older than the cutoff at update
    time, so a message that lands meanwhile keeps its conversation open. Audits
    CONVERSATION_CLOSE with the count (principal ``job:cleanup_sessions``).
    """
    cutoff = session_cutoff(now)
    expired = Conversation.objects.filter(
        status=Conversation.Status.ACTIVE, last_activity_at__lt=cutoff
    )
    total = 0
    last_pk = 0
    while True:
        ids = list(
            expired.filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        last_pk = ids[-1]
        with transaction.atomic():
            total += expired.filter(pk__in=ids).update(
                status=Conversation.Status.CLOSED, closed_at=now, updated_at=now
            )
        if len(ids) < batch_size:
            break
    audit_record(
        action=AuditAction.CONVERSATION_CLOSE,
        system_principal=CLEANUP_PRINCIPAL,
        target_type="conversation",
        details={"count": total},
    )
    logger.info("chat.sessions_cleanup closed=%d", total)
    return total


# --- Legal hold -----------------------------------------------------------------


def conversation_legal_hold_set(
    *,
    conversation: Conversation,
    on: bool,
    actor: Any,
    reason: str,
    incident_reference: str = "",
    request: HttpRequest | None = None,
) -> bool:
    """Place (``on``) or release a legal hold; True when the hold changed.

    Needs ``compliance.set_legal_hold`` (PermissionDenied) and a reason code from
    compliance.legal_hold.LegalHoldReason, optionally an existing incident's
    reference (ValidationError otherwise). A change is audited as LEGAL_HOLD_CHANGE
    with codes only; no free text is taken, so none reaches the audit row. A
    conditional UPDATE makes concurrent requests change (and audit) it once.
    """
    from compliance.legal_hold import legal_hold_details

    details = legal_hold_details(
        user=actor, on=on, reason=reason, incident_reference=incident_reference
    )
    with transaction.atomic():
        changed = Conversation.objects.filter(
            pk=conversation.pk, legal_hold=not on
        ).update(legal_hold=on, updated_at=timezone.now())
        if changed:
            audit_record(
                action=AuditAction.LEGAL_HOLD_CHANGE,
                actor=actor,
                target_type="conversation",
                target_id=conversation.pk,
                details=details,
                request=request,
            )
    conversation.legal_hold = on
    return bool(changed)
