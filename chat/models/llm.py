"""LLM call records and circuit-breaker transitions: metrics data, never content."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class LLMCall(models.Model):
    """One logical LLM call (retries included) or one call refused before upstream.

    Holds ids, timings, counts and codes only: no prompt, no reply, no key.
    """

    # Only created_at is indexed: every reader (ops figures, the retention purge)
    # selects by time, and each index is one more encrypted page per LLM call.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    user_id = models.BigIntegerField(null=True, blank=True)
    conversation_id = models.BigIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    retries = models.PositiveSmallIntegerField(default=0)
    upstream_calls = models.PositiveSmallIntegerField(default=0)
    outcome = models.CharField(max_length=32)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    breaker_state = models.CharField(max_length=16, blank=True, default="")
    streamed = models.BooleanField(default=False)
    model = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        verbose_name = "LLM call"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"LLM call #{self.pk}"


class BreakerTransition(models.Model):
    """One circuit-breaker state change, by the system or by an operator."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    name = models.CharField(max_length=32, default="llm")
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    reason = models.CharField(max_length=32)
    consecutive_failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["name", "-created_at"], name="chat_brk_name_at")
        ]

    def __str__(self) -> str:
        return f"Breaker transition #{self.pk}"

    @property
    def at(self) -> object:
        """Alias of created_at (contract F names it ``at``)."""
        return self.created_at
