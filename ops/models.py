"""Operational records: alerts, job runs and the runner lease, backups, keys, samples."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AlertSeverity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    WARNING = "warning", "Warning"


class Alert(models.Model):
    """One firing of an alert rule; at most one open alert per rule."""

    rule = models.CharField(max_length=64, db_index=True)
    severity = models.CharField(max_length=16, choices=AlertSeverity.choices)
    summary = models.CharField(max_length=200)
    value = models.FloatField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)
    incident_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule"],
                condition=models.Q(resolved_at__isnull=True),
                name="ops_one_open_alert_per_rule",
            )
        ]

    def __str__(self) -> str:
        return f"Alert #{self.pk} ({self.rule})"


class JobRun(models.Model):
    """One run of a scheduled job: when, how it ended and its counts (never content)."""

    job = models.CharField(max_length=64, db_index=True)
    runner = models.CharField(max_length=128, blank=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, default="running")
    error_code = models.CharField(max_length=64, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["job", "-started_at"])]

    def __str__(self) -> str:
        return f"JobRun #{self.pk} ({self.job})"


class JobLease(models.Model):
    """The job runner's lease: only the holder of an unexpired lease runs jobs."""

    name = models.CharField(max_length=64, unique=True)
    holder = models.CharField(max_length=128, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"JobLease {self.name}"


class BackupRecord(models.Model):
    """An encrypted backup file written (or checked) by backup_db."""

    path = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField(default=0)
    key_id = models.CharField(max_length=32, blank=True)
    row_counts = models.JSONField(default=dict, blank=True)
    verified = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Backup #{self.pk}"


class KeyRecord(models.Model):
    """A database key generation: its id and fingerprint (never the key) and its age."""

    purpose = models.CharField(max_length=32, default="database")
    key_id = models.CharField(max_length=32)
    fingerprint = models.CharField(max_length=32, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Key {self.key_id} ({self.purpose})"


class IntegrityCheck(models.Model):
    """The nightly integrity check's result, read by /health/ (never run per request)."""

    ok = models.BooleanField()
    quick_check = models.CharField(max_length=200, blank=True)
    cipher_errors = models.IntegerField(default=0)
    pages = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"IntegrityCheck #{self.pk}"


class MetricSample(models.Model):
    """One minute's value of a dashboard series (filled by the job runner)."""

    series = models.CharField(max_length=64)
    value = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["series", "created_at"])]

    def __str__(self) -> str:
        return f"MetricSample {self.series}"


class RequestMinute(models.Model):
    """One minute of HTTP traffic (all web workers the runner can see): counts only.

    Written by the job runner from the Prometheus multiprocess files, so alert rules
    can aggregate a window (requests, 5xx, latency buckets) instead of one sample.
    """

    requests = models.IntegerField(default=0)
    server_errors = models.IntegerField(default=0)
    # {"<le>": count}: non-cumulative latency histogram counts of this minute.
    buckets = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"RequestMinute #{self.pk}"


class LogScanOffset(models.Model):
    """How far the PHI log scan has read one log file (per inode), and what it found."""

    path = models.CharField(max_length=500, unique=True)
    inode = models.BigIntegerField(default=0)
    offset = models.BigIntegerField(default=0)
    lines = models.BigIntegerField(default=0)
    findings = models.IntegerField(default=0)
    first_finding_line = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"LogScanOffset #{self.pk}"


class BreakerControl(Alert):
    """Admin entry for the circuit-breaker controls (no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "circuit breaker"
        verbose_name_plural = "circuit breaker controls"


class Dashboard(MetricSample):
    """Admin entry for the metrics dashboard (no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard (last 24 hours)"
