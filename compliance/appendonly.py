"""The database side of append-only audit rows: trigger names, checks, the prune window.

Migration 0003 creates triggers that refuse UPDATE and DELETE on the audit table
(and TRUNCATE on PostgreSQL), 0005 the same on the incident timeline, and 0007
guards the chain head row (no delete, no renaming, no going back). Deleting is
possible only inside ``audit_prune_window``, and only for rows older than its
cutoff: audit retention (AUDIT_RETENTION_YEARS) uses it, and the test suite's flush
between transactional tests (the only caller that opens it for everything, which
the head row's delete trigger requires). On SQLite the window is a
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

AUDIT_TABLE = "compliance_auditevent"
TIMELINE_TABLE = "compliance_incidentupdate"
HEAD_TABLE = "compliance_auditchainhead"
# (table, trigger name) pairs that must all exist for the trail to be append-only.
SQLITE_TRIGGERS = (
    (AUDIT_TABLE, "compliance_auditevent_no_update"),
    (AUDIT_TABLE, "compliance_auditevent_no_delete"),
    (TIMELINE_TABLE, "compliance_incidentupdate_no_update"),
    (TIMELINE_TABLE, "compliance_incidentupdate_no_delete"),
    (HEAD_TABLE, "compliance_auditchainhead_no_rewrite"),
    (HEAD_TABLE, "compliance_auditchainhead_no_delete"),
)
POSTGRES_TRIGGERS = tuple(
    (table, f"{table}_{suffix}")
    for table in (AUDIT_TABLE, TIMELINE_TABLE, HEAD_TABLE)
    for suffix in ("no_change", "no_truncate")
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
    """True when every append-only trigger exists, by name and table (and, on
    PostgreSQL, is enabled)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT c.relname, t.tgname FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND t.tgenabled <> 'D'"
            )
            return set(POSTGRES_TRIGGERS) <= set(cursor.fetchall())
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'"
            )
            return set(SQLITE_TRIGGERS) <= set(cursor.fetchall())
    return False
