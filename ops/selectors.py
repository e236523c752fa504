"""Read queries of the ops app (records it owns, and figures from chat/compliance)."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from ops.models import (
    Alert,
    BackupRecord,
    IntegrityCheck,
    JobRun,
    KeyRecord,
    MetricSample,
)
from stepsync.secrets import DATABASE_KEY, SecretError, key_file_path, read_secret

logger = logging.getLogger(__name__)


def backup_latest() -> BackupRecord | None:
    return BackupRecord.objects.order_by("-created_at").first()


def integrity_latest() -> IntegrityCheck | None:
    return IntegrityCheck.objects.order_by("-created_at").first()


def key_created_at() -> datetime | None:
    """When the database key in use was created (its KeyRecord, else the key file)."""
    if settings.DATABASES["default"]["ENGINE"] != "stepsync.db.sqlcipher":
        return None
    from ops.cipherfile import key_fingerprint

    try:
        fingerprint = key_fingerprint(read_secret(DATABASE_KEY))
    except SecretError:
        return None
    record = (
        KeyRecord.objects.filter(purpose="database", fingerprint=fingerprint)
        .order_by("created_at")
        .first()
    )
    if record is not None:
        return record.created_at
    path = key_file_path(DATABASE_KEY)
    if os.environ.get(DATABASE_KEY.env, "").strip() or not path.exists():
        return None
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def alerts_open() -> list[Alert]:
    return list(Alert.objects.filter(resolved_at__isnull=True).order_by("-created_at"))


def job_runs_recent(*, limit: int = 50) -> list[JobRun]:
    return list(JobRun.objects.order_by("-started_at")[:limit])


def job_last_success(*, job: str) -> JobRun | None:
    return (
        JobRun.objects.filter(job=job, outcome="success")
        .order_by("-started_at")
        .first()
    )


def samples_since(
    *, series: list[str], since: datetime
) -> dict[str, list[tuple[datetime, float]]]:
    rows = MetricSample.objects.filter(series__in=series, created_at__gte=since)
    out: dict[str, list[tuple[datetime, float]]] = {name: [] for name in series}
    for name, at, value in rows.order_by("created_at").values_list(
        "series", "created_at", "value"
    ):
        out[name].append((at, value))
    return out


def database_size_bytes() -> int:
    """File size (main + WAL) for SQLite, pg_database_size for PostgreSQL."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            return int(cursor.fetchone()[0])
    path = Path(settings.DATABASES["default"]["NAME"])
    total = 0
    for candidate in (path, Path(f"{path}-wal")):
        try:
            total += candidate.stat().st_size
        except OSError:
            continue
    return total


def session_stats_or_none() -> Any:
    """chat.selectors.session_stats (contract E), or None before chat provides it."""
    try:
        from chat.selectors import session_stats
    except ImportError:
        return None
    return session_stats()


def breaker_snapshot_or_none() -> Any:
    """chat.breaker.breaker_snapshot (contract F), or None before it exists."""
    try:
        from chat.breaker import breaker_snapshot
    except ImportError:
        return None
    return breaker_snapshot(name="llm")
