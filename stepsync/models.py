"""Shared state rows: atomic counters, compare-and-set values and leases (sharedstate)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class SharedState(models.Model):
    """One key of cross-process state; never holds user content.

    ``n`` is a counter, ``value`` a small JSON document guarded by ``version`` for
    compare-and-set, ``expires_at`` / ``touched_at`` epoch seconds (0 = never).
    All writes go through stepsync.sharedstate with single conditional UPDATEs.
    """

    key = models.CharField(max_length=200, primary_key=True)
    n = models.BigIntegerField(default=0)
    value = models.TextField(default="", blank=True)
    version = models.BigIntegerField(default=0)
    expires_at = models.FloatField(default=0.0)
    touched_at = models.FloatField(default=0.0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "shared state key"

    def __str__(self) -> str:
        return f"SharedState {self.key}"
