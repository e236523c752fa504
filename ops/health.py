"""Health reports: liveness, readiness and the operator's detailed status.

Every probe maps a fault to a status code instead of raising (RELIABILITY.md §2.1
items 16-20): a held write lock or a full disk → ``degraded``; a wrong or missing key
→ ``down``. Expensive figures (size, counts) are cached for HEALTH_CACHE_SECONDS and
the integrity result is the nightly job's, never a per-request scan.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

from ops import selectors
from stepsync.db.sqlcipher.errors import DatabaseKeyError

logger = logging.getLogger(__name__)

HEALTHY, DEGRADED, DOWN = "healthy", "degraded", "down"
DB_DEGRADED = {"locked", "disk_full"}
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL = 5, 6, 13
DETAILS_CACHE_KEY = "ops:health:details"
_migrations_ok_until = 0.0


def _is_sqlite() -> bool:
    return connection.vendor == "sqlite"


def _classify_db_error(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    code = getattr(cause, "sqlite_errorcode", None)
    text = str(cause).lower()
    if code in (SQLITE_BUSY, SQLITE_LOCKED) or "locked" in text:
        return "locked"
    if code == SQLITE_FULL or "disk is full" in text:
        return "disk_full"
    if "not a database" in text:
        return "key_invalid"
    return "error"


def _disk_full() -> bool:
    """Less room to grow than HEALTH_MIN_FREE_DISK_MB (disk space or file-size limit)."""
    free = selectors.database_free_bytes()
    return free is not None and free < settings.HEALTH_MIN_FREE_DISK_MB * 1024 * 1024


def database_status(*, write_probe: bool = True) -> str:
    """ "ok", "locked", "disk_full", "key_invalid", "unavailable" or "error".

    On SQLite the probe takes and releases the write lock (BEGIN IMMEDIATE) with a
    short busy timeout: in WAL mode a read alone never notices a held write lock.
    """
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            if _is_sqlite() and write_probe and not connection.in_atomic_block:
                _probe_write_lock(cursor)
            else:
                cursor.execute("SELECT 1")
        full = _disk_full()
    except DatabaseKeyError as exc:
        return "key_invalid" if exc.code == "key_invalid" else "unavailable"
    except ImproperlyConfigured:
        return "unavailable"
    except DatabaseError as exc:
        status = _classify_db_error(exc)
        if status in ("key_invalid", "error"):
            connection.close()
        return status
    return "disk_full" if full else "ok"


def _probe_write_lock(cursor: Any) -> None:
    short = int(settings.HEALTH_DB_BUSY_TIMEOUT_MS)
    cursor.execute(f"PRAGMA busy_timeout = {short}")
    try:
        cursor.execute("BEGIN IMMEDIATE")
        cursor.execute("ROLLBACK")
    finally:
        cursor.execute(
            f"PRAGMA busy_timeout = {int(settings.DATABASE_BUSY_TIMEOUT_MS)}"
        )


def migrations_applied() -> bool:
    """True when no migration is pending (cached positive answer per process)."""
    global _migrations_ok_until
    if time.monotonic() < _migrations_ok_until:
        return True
    executor = MigrationExecutor(connection)
    targets = executor.loader.graph.leaf_nodes()
    if executor.migration_plan(targets):
        return False
    _migrations_ok_until = time.monotonic() + max(settings.HEALTH_CACHE_SECONDS, 30)
    return True


def redis_ok() -> bool | None:
    """Ping Redis when REDIS_URL is set; None when it is not configured."""
    if not settings.REDIS_URL:
        return None
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def readiness() -> tuple[bool, str]:
    """(ready, reason code): database with a valid key, migrations, Redis."""
    db = database_status(write_probe=False)
    if db != "ok" and db not in DB_DEGRADED:
        return False, f"database_{db}"
    try:
        if not migrations_applied():
            return False, "migrations_pending"
    except DatabaseError:
        return False, "database_error"
    if redis_ok() is False:
        return False, "redis_unreachable"
    return True, "ok"


def _section(name: str, build: Callable[[], Any]) -> Any:
    """Build one section; a failure becomes {"error": <type>} instead of a 500.

    Catching broadly is deliberate: this is the boundary where a monitoring probe must
    keep answering whatever one part of the system does.
    """
    try:
        return build()
    except Exception as exc:
        logger.warning(
            "ops.health.section_failed section=%s error=%s", name, type(exc).__name__
        )
        return {"error": type(exc).__name__}


def _age_seconds(then: datetime | None, now: datetime) -> int | None:
    return None if then is None else max(0, int((now - then).total_seconds()))


def _age_days(then: object, now: datetime) -> int | None:
    """Whole days since ``then``; None unless it is a datetime (a failed section is a
    dict)."""
    seconds = _age_seconds(then, now) if isinstance(then, datetime) else None
    return None if seconds is None else seconds // 86400


def database_encrypted() -> bool | None:
    """False for a plaintext SQLite file; None on PostgreSQL (the service's own)."""
    if connection.vendor == "postgresql":
        return None  # the database service's at-rest encryption; fields by the app
    if not selectors.uses_sqlcipher():
        return False
    from ops.cipherfile import header_is_plaintext

    path = settings.DATABASES["default"]["NAME"]
    return not (os.path.exists(path) and header_is_plaintext(path))


def _cached_figures() -> dict[str, Any]:
    figures = cache.get(DETAILS_CACHE_KEY)
    if figures is None:
        stats = selectors.session_stats_now()
        figures = {
            "size_bytes": selectors.database_size_bytes(),
            "sessions": stats.active_sessions,
            "messages": stats.total_messages,
            "memory": {
                "active_sessions": stats.active_sessions,
                "max_active_sessions": stats.max_active_sessions,
                "capacity_used_pct": round(float(stats.capacity_used_pct), 1),
                "approaching_capacity": bool(stats.approaching_capacity),
            },
        }
        cache.set(DETAILS_CACHE_KEY, figures, settings.HEALTH_CACHE_SECONDS)
    return figures


def _breaker() -> dict[str, Any]:
    snap = selectors.breaker_snapshot_now()
    return {
        "state": snap.state,
        "consecutive_failures": snap.consecutive_failures,
        "next_attempt_at": snap.next_attempt_at.isoformat()
        if snap.next_attempt_at
        else None,
    }


def _integrity() -> dict[str, Any] | None:
    check = selectors.integrity_latest()
    if check is None:
        return None
    return {
        "ok": check.ok,
        "at": check.created_at.isoformat(),
        "cipher_errors": check.cipher_errors,
        "pages": list(check.pages)[:20],
    }


def health_report(*, now: datetime, details: bool) -> dict[str, Any]:
    """The /health/ body: status always; the rest only when ``details`` is True."""
    db = database_status()
    report: dict[str, Any] = {"status": HEALTHY, "timestamp": now.isoformat()}
    database: dict[str, Any] = {
        "status": db,
        "encrypted": _section("encrypted", database_encrypted),
    }
    degraded: list[str] = []
    if db in DB_DEGRADED:
        degraded.append(f"db_{db}")
    elif db != "ok":
        report["status"] = DOWN
    if db == "ok" or db in DB_DEGRADED:
        breaker = _section("breaker", _breaker)
        if isinstance(breaker, dict) and breaker.get("state") in (
            "open",
            "forced_open",
        ):
            degraded.append("breaker_open")
        if redis_ok() is False:
            degraded.append("redis_unreachable")
        if details:
            report.update(_details(now, database, breaker))
    if degraded and report["status"] != DOWN:
        report["status"] = DEGRADED
    if not details:
        return {"status": report["status"]}
    report["db"] = db
    report["database"] = database
    report["degraded_by"] = degraded
    report["llm_configured"] = bool(settings.GROQ_API_KEY)
    return report


def _details(now: datetime, database: dict[str, Any], breaker: Any) -> dict[str, Any]:
    figures = _section("figures", _cached_figures)
    if isinstance(figures, dict) and "error" not in figures:
        database.update(
            size_bytes=figures["size_bytes"],
            sessions=figures["sessions"],
            messages=figures["messages"],
        )
        memory = figures["memory"]
    else:
        memory = None
    database["last_integrity_check"] = _section("integrity", _integrity)
    backup = _section("backup", selectors.backup_latest)
    key_at = _section("key_age", selectors.key_created_at)
    return {
        "circuit_breaker": breaker,
        "memory": memory,
        "last_backup_age_seconds": _age_seconds(
            getattr(backup, "created_at", None), now
        ),
        "database_key_age_days": _age_days(key_at, now),
    }
