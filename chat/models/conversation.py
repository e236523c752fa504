"""Conversations and messages; message text is sanitized and encrypted at rest."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from stepsync.fields import EncryptedTextField


def session_cutoff(now: datetime) -> datetime:
    """Conversations idle since before this instant are expired."""
    return now - timedelta(hours=settings.SESSION_TIMEOUT_HOURS)


class Conversation(models.Model):
    """One chat session of one user; active until SESSION_TIMEOUT_HOURS idle."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"

    # No index of its own: chat_conv_user_activity (user, last_activity_at) serves
    # every lookup by user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="conversations",
        db_index=False,
    )
    # Sanitized like message text, and encrypted too: a title is typed by the user.
    title = EncryptedTextField(blank=True, default="")
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.ACTIVE
    )
    # The rule-based assistant's slots (platform, source, level...); codes, no text.
    state = models.JSONField(default=dict, blank=True)
    legal_hold = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_activity_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    # A message sent to a closed conversation starts this one's successor.
    continued_from = models.OneToOneField(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="continuation",
    )

    class Meta:
        ordering = ["-last_activity_at", "-id"]
        indexes = [
            # The user's conversation list, newest activity first.
            models.Index(
                fields=["user", "-last_activity_at"], name="chat_conv_user_activity"
            ),
            # Cleanup (expired active rows) and the active-session count.
            models.Index(
                fields=["status", "last_activity_at"], name="chat_conv_status_activity"
            ),
        ]

    def __str__(self) -> str:
        return f"Conversation #{self.pk}"

    def is_open(self, now: datetime | None = None) -> bool:
        """Active and not idle past SESSION_TIMEOUT_HOURS (cleanup may lag)."""
        if self.status != self.Status.ACTIVE:
            return False
        return self.last_activity_at >= session_cutoff(now or timezone.now())

    @property
    def effective_status(self) -> str:
        """``closed`` once idle past the timeout, even before cleanup has run."""
        return self.Status.ACTIVE if self.is_open() else self.Status.CLOSED


class Message(models.Model):
    """One turn: the sanitized user text or the assistant's reply. Never raw input."""

    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Source(models.TextChoices):
        NONE = "", "None"
        RULES = "rules", "Rules"
        LLM = "llm", "LLM"
        FALLBACK = "fallback", "Fallback"

    class Status(models.TextChoices):
        COMPLETE = "complete", "Complete"
        INCOMPLETE = "incomplete", "Incomplete"

    # No index of its own: chat_msg_conv_created (conversation, created_at) serves
    # every lookup by conversation, and each index is one more encrypted page to
    # write per stored message.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    text = EncryptedTextField()
    # {TYPE: count} of identifiers removed from this text; never the values.
    redactions = models.JSONField(default=dict, blank=True)
    source = models.CharField(
        max_length=10, choices=Source.choices, default=Source.NONE, blank=True
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.COMPLETE
    )
    # A fixed, server-written notice (e.g. "answered without the AI service").
    notice = models.CharField(max_length=255, blank=True, default="")
    quick_replies = models.JSONField(default=list, blank=True)
    # SHA-256 of the client's Idempotency-Key header (user messages only); NULL
    # (not "") means "no key", so those rows stay outside the unique constraint.
    idempotency_key = models.CharField(  # noqa: DJ001
        max_length=64, null=True, blank=True
    )
    # The user message an assistant message answers.
    in_reply_to = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="replies",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["conversation", "created_at"], name="chat_msg_conv_created"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="chat_msg_idempotency_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"Message #{self.pk}"

    @property
    def redaction_total(self) -> int:
        return sum(int(n) for n in (self.redactions or {}).values())
