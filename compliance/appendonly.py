"""The database side of append-only audit rows: trigger names, checks, the prune window.

Migration 0003 creates triggers that refuse UPDATE and DELETE on the audit table
(and TRUNCATE on PostgreSQL). Deleting is possible only inside ``audit_prune_window``,
and only for rows older than its cutoff: audit retention (AUDIT_RETENTION_YEARS) uses
it, and the test suite's flush between transactional tests. On SQLite the window is a
per-connection SQL function, so a connection opened outside Django (no function) can
delete nothing; on PostgreSQL it is a session setting read by the trigger function.
Anyone who can drop triggers can bypass them: the HMAC chain is what detects that.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "compliance_auditevent"
SQLITE_TRIGGERS = ("compliance_auditevent_no_update", "compliance_auditevent_no_delete")
POSTGRES_TRIGGERS = (
    "compliance_auditevent_no_change",
    "compliance_auditevent_no_truncate",
)
SQLITE_FUNCTION = "stepsync_audit_prune_before"
POSTGRES_SETTING = "stepsync.audit_prune_before"
EVERYTHING = "9999-12-31 23:59:59.999999"

_window = threading.local()


def _prune_before() -> str | None:
    return getattr(_window, "cutoff", None)


def register_sqlite_function(
    sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any
) -> None:
    """connection_created receiver: give each SQLite connection the window function."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_FUNCTION, 0, _prune_before)


def _cutoff_text(before: datetime | None) -> str:
    if before is None:
        return EVERYTHING
    return before.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@contextmanager
def audit_prune_window(
    *, before: datetime | None, using: str = "default"
) -> Iterator[None]:
    """Let this connection delete audit rows older than ``before`` (None: all rows).

    Only audit retention and the test suite's flush use this. UPDATE stays refused.
    """
    connection = connections[using]
    cutoff = _cutoff_text(before)
    if connection.vendor == "postgresql":
        value = "infinity" if before is None else before.isoformat()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config(%s, %s, false)", [POSTGRES_SETTING, value]
            )
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, '', false)", [POSTGRES_SETTING])
        return
    previous = _prune_before()
    _window.cutoff = cutoff
    try:
        yield
    finally:
        _window.cutoff = previous


def triggers_present(using: str = "default") -> bool:
    """True when the append-only triggers exist on the audit table."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgname = ANY(%s)",
                [list(POSTGRES_TRIGGERS)],
            )
            return int(cursor.fetchone()[0]) == len(POSTGRES_TRIGGERS)
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = %s",
                [TABLE],
            )
            return int(cursor.fetchone()[0]) >= len(SQLITE_TRIGGERS)
    return False


def triggers_drop(using: str = "default") -> None:
    """Drop the triggers (tests only, inside a transaction that is rolled back)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for name in POSTGRES_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {TABLE}")
        else:
            for name in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
