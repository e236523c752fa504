"""Read queries of the ops app (records it owns, and figures from chat/compliance)."""

from __future__ import annotations

import logging
import os
import resource
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import connection

from chat.breaker import BreakerSnapshot, breaker_snapshot
from chat.selectors import SessionStats, session_stats
from ops.models import (
    Alert,
    BackupRecord,
    IntegrityCheck,
    JobRun,
    KeyRecord,
    MetricSample,
    RequestMinute,
)
from stepsync.secrets import DATABASE_KEY, SecretError, key_file_path, read_secret

logger = logging.getLogger(__name__)
SQLCIPHER_ENGINE = "stepsync.db.sqlcipher"


def uses_sqlcipher() -> bool:
    """True for the embedded SQLCipher file (backups, rotation and integrity apply)."""
    return settings.DATABASES["default"]["ENGINE"] == SQLCIPHER_ENGINE


def backup_latest() -> BackupRecord | None:
    return BackupRecord.objects.order_by("-created_at").first()


def integrity_latest() -> IntegrityCheck | None:
    return IntegrityCheck.objects.order_by("-created_at").first()


def key_record_in_use() -> KeyRecord | None:
    """The oldest KeyRecord whose fingerprint matches the database key in use."""
    if not uses_sqlcipher():
        return None
    from ops.cipherfile import key_fingerprint

    try:
        fingerprint = key_fingerprint(read_secret(DATABASE_KEY))
    except SecretError:
        return None
    return (
        KeyRecord.objects.filter(purpose="database", fingerprint=fingerprint)
        .order_by("created_at")
        .first()
    )


def key_created_at() -> datetime | None:
    """When the database key in use was created (its KeyRecord, else the key file)."""
    record = key_record_in_use()
    if record is not None:
        return record.created_at
    if not uses_sqlcipher():
        return None
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


@dataclass(frozen=True)
class RequestWindow:
    """HTTP traffic summed over the RequestMinute rows of a window."""

    minutes: int = 0
    requests: int = 0
    server_errors: int = 0
    buckets: dict[float, float] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return self.server_errors / self.requests if self.requests else 0.0


def request_window(*, since: datetime, until: datetime) -> RequestWindow | None:
    """The window's HTTP totals, or None when no minute was sampled in it (no data)."""
    rows = RequestMinute.objects.filter(created_at__gt=since, created_at__lte=until)
    minutes = requests = errors = 0
    buckets: dict[float, float] = {}
    for count, failed, minute_buckets in rows.values_list(
        "requests", "server_errors", "buckets"
    ):
        minutes += 1
        requests += count
        errors += failed
        for le, value in (minute_buckets or {}).items():
            bound = float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(value)
    if not minutes:
        return None
    return RequestWindow(minutes, requests, errors, buckets)


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


def session_stats_now() -> SessionStats:
    """chat.selectors.session_stats (contract E)."""
    return session_stats()


def breaker_snapshot_now() -> BreakerSnapshot:
    """The LLM breaker's shared state (contract F)."""
    return breaker_snapshot(name="llm")


def database_free_bytes() -> int | None:
    """Room left for the SQLite database to grow: free disk space, capped by this
    process's file-size limit (RLIMIT_FSIZE) beyond the larger of the main file and
    its WAL, and by SQLite's own ``max_page_count``. None on PostgreSQL."""
    if connection.vendor != "sqlite":
        return None
    path = Path(settings.DATABASES["default"]["NAME"])
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return None
    limit, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit != resource.RLIM_INFINITY:
        largest = 0
        for candidate in (path, Path(f"{path}-wal")):
            try:
                largest = max(largest, candidate.stat().st_size)
            except OSError:
                continue
        free = min(free, max(0, limit - largest))
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA page_count")
        pages = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA max_page_count")
        max_pages = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA page_size")
        page_size = int(cursor.fetchone()[0])
    return min(free, max(0, max_pages - pages) * page_size)
