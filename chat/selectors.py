"""Read queries for chat: a user's conversations and the session statistics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone

from chat.models import Conversation, Message
from chat.models.conversation import session_cutoff
from compliance.models import AuditAction
from compliance.services import audit_record
from stepsync.db import statements

# Primary keys are BigAutoField: anything outside this range cannot exist.
MAX_PK = 2**63 - 1
APPROACHING_CAPACITY_PCT = 80.0


@dataclass(frozen=True)
class SessionStats:
    """Active-conversation capacity, as the health view and metrics show it."""

    active_sessions: int
    total_messages: int
    max_active_sessions: int
    capacity_used_pct: float
    approaching_capacity: bool


def _as_pk(pk: object) -> int | None:
    if isinstance(pk, bool):
        return None
    if isinstance(pk, int):
        value = pk
    elif isinstance(pk, str) and pk.isascii() and pk.isdigit():
        value = int(pk)
    else:
        return None
    return value if 0 < value <= MAX_PK else None


def conversation_get_for_user(
    *, user: Any, pk: object, request: HttpRequest | None = None
) -> Conversation:
    """The user's own conversation ``pk``; Http404 for anything else.

    Another user's id is indistinguishable from a missing one (404), and is audited
    as ACCESS_DENIED (ASVS 16.3.2) with the id only.
    """
    value = _as_pk(pk)
    if value is None or user is None or not user.is_authenticated:
        raise Http404
    conversation = statements.select_one(Conversation, [("id", "=", value)])
    if conversation is None:
        raise Http404
    if conversation.user_id != user.pk:
        audit_record(
            action=AuditAction.ACCESS_DENIED,
            actor=user,
            target_type="conversation",
            target_id=value,
            outcome="denied",
            request=request,
        )
        raise Http404
    return conversation


def conversation_list_for_user(*, user: Any) -> QuerySet[Conversation]:
    """The user's conversations, most recent activity first."""
    return Conversation.objects.filter(user=user).order_by("-last_activity_at", "-id")


def conversation_successor(*, conversation: Conversation) -> Conversation | None:
    """The conversation that continues this one after it closed, if any."""
    return Conversation.objects.filter(continued_from=conversation).first()


def session_stats(*, now: datetime | None = None) -> SessionStats:
    """Counts for capacity: indexed counts only, no per-row work.

    Active sessions are active conversations not idle past SESSION_TIMEOUT_HOURS
    (cleanup may not have closed the expired ones yet).
    """
    cutoff = session_cutoff(now or timezone.now())
    active = Conversation.objects.filter(
        status=Conversation.Status.ACTIVE, last_activity_at__gte=cutoff
    ).count()
    total = Message.objects.count()
    capacity = max(int(settings.MAX_ACTIVE_SESSIONS), 1)
    pct = round(100.0 * active / capacity, 1)
    return SessionStats(
        active_sessions=active,
        total_messages=total,
        max_active_sessions=capacity,
        capacity_used_pct=pct,
        approaching_capacity=pct >= APPROACHING_CAPACITY_PCT,
    )
