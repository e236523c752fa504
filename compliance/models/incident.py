"""Incident records: the report fields, breach scope, and an append-only timeline."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from stepsync.fields import EncryptedTextField


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    INVESTIGATING = "investigating", "Investigating"
    CONTAINED = "contained", "Contained"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


# Statuses in which an incident is still being worked on (source_key de-duplication).
ACTIVE_STATUSES = (
    IncidentStatus.OPEN,
    IncidentStatus.INVESTIGATING,
    IncidentStatus.CONTAINED,
)


class IncidentCategory(models.TextChoices):
    PRIVACY = "privacy", "Privacy / PHI exposure"
    SECURITY = "security", "Security"
    AVAILABILITY = "availability", "Availability"
    INTEGRITY = "integrity", "Data integrity"
    LLM = "llm", "LLM provider"
    DATABASE = "database", "Database"
    BACKUP = "backup", "Backup / restore"
    OPERATIONAL = "operational", "Operational"
    OTHER = "other", "Other"


class DataCategory(models.TextChoices):
    ACCOUNT = "account", "Account identifiers (username, e-mail)"
    CONVERSATION = "conversation", "Conversation content"
    HEALTH = "health", "Health and activity data"
    DEVICE = "device", "Device and app identifiers"
    CREDENTIALS = "credentials", "Credentials, tokens or keys"
    AUDIT = "audit", "Audit and access records"
    LOGS = "logs", "Logs and telemetry"
    BACKUPS = "backups", "Backups"


class IncidentSequence(models.Model):
    """Last reference number handed out per year (row-locked while allocating)."""

    year = models.PositiveIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Incident sequence {self.year}"


class Incident(models.Model):
    """One incident report; free text is sanitized by the service before saving."""

    reference = models.CharField(max_length=20, unique=True, editable=False)
    year = models.PositiveIntegerField(editable=False)
    number = models.PositiveIntegerField(editable=False)
    title = EncryptedTextField()
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(
        max_length=15, choices=IncidentStatus.choices, default=IncidentStatus.OPEN
    )
    category = models.CharField(max_length=20, choices=IncidentCategory.choices)
    description = EncryptedTextField(blank=True, default="")
    detected_at = models.DateTimeField(default=timezone.now, db_index=True)
    contained_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    users_affected = models.PositiveIntegerField(default=0)
    data_categories = models.JSONField(default=list, blank=True)
    root_cause = EncryptedTextField(blank=True, default="")
    fix_applied = EncryptedTextField(blank=True, default="")
    lessons_learned = EncryptedTextField(blank=True, default="")
    is_breach = models.BooleanField(default=False)
    individuals_affected = models.PositiveIntegerField(default=0)
    state_counts = models.JSONField(default=dict, blank=True)
    individuals_notified_at = models.DateTimeField(null=True, blank=True)
    hhs_notified_at = models.DateTimeField(null=True, blank=True)
    media_notified_at = models.DateTimeField(null=True, blank=True)
    source_key = models.CharField(max_length=200, blank=True, default="")
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["year", "number"], name="incident_year_number_unique"
            ),
            models.UniqueConstraint(
                fields=["source_key"],
                condition=Q(status__in=["open", "investigating", "contained"])
                & ~Q(source_key=""),
                name="incident_active_source_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"Incident {self.reference}" if self.reference else "Incident"


class AppendOnlyQuerySet(models.QuerySet["IncidentUpdate"]):
    """Refuses bulk update and delete: timeline rows are never changed."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise PermissionError("incident timeline rows are append-only")

    def delete(self) -> NoReturn:
        raise PermissionError("incident timeline rows are append-only")


class IncidentUpdate(models.Model):
    """One timeline entry: when, who, an optional status change and a note.

    Append-only here (save/delete/bulk refused) and in the database (migration
    0005's triggers refuse UPDATE and DELETE outside the compliance prune window).
    """

    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="updates"
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)
    # No database constraint and no SET_NULL: deleting a user must not UPDATE
    # timeline rows (the append-only triggers would refuse it). Shown by id only.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    system_principal = models.CharField(max_length=64, blank=True, default="")
    from_status = models.CharField(
        max_length=15, choices=IncidentStatus.choices, blank=True, default=""
    )
    to_status = models.CharField(
        max_length=15, choices=IncidentStatus.choices, blank=True, default=""
    )
    note = EncryptedTextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"Incident update #{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("incident timeline rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PermissionError("incident timeline rows are append-only")
