"""Test-only: drop the append-only triggers inside a test's (rolled back) transaction."""

from __future__ import annotations

from django.db import connections

from compliance.appendonly import POSTGRES_TRIGGERS, SQLITE_TRIGGERS


def triggers_drop(using: str = "default") -> None:
    """Drop every append-only trigger, as a database writer bypassing them would."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table, name in POSTGRES_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        else:
            for _, name in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
