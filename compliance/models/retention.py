"""Retention runs: one row per purge attempt, counts only."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class RetentionOutcome(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCESS = "success", "Success"
    REFUSED = "refused", "Refused (clock check)"
    FAILED = "failed", "Failed"


class RetentionRun(models.Model):
    """A purge attempt: the `now` it used, dry run or not, and deletions per model."""

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    now_used = models.DateTimeField(db_index=True)
    dry_run = models.BooleanField(default=False)
    forced = models.BooleanField(default=False)
    counts = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(default=0)
    outcome = models.CharField(
        max_length=10,
        choices=RetentionOutcome.choices,
        default=RetentionOutcome.RUNNING,
    )
    reason = models.CharField(max_length=64, blank=True, default="")
    # WAL checkpoint after real deletions: complete / busy / failed / skipped ...
    checkpoint = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Retention run #{self.pk}"
