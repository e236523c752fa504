"""Database triggers that make audit rows append-only (SQLite/SQLCipher, PostgreSQL).

UPDATE is always refused. DELETE (and TRUNCATE on PostgreSQL) is refused unless the
connection opened a prune window (compliance/appendonly.py) and the row is older than
its cutoff. NOTE: on SQLite, a later migration that rebuilds compliance_auditevent
drops these triggers; such a migration must re-create them (a test checks they exist).
"""

from typing import Any

from django.db import migrations

SQLITE_CREATE = [
    """
    CREATE TRIGGER IF NOT EXISTS compliance_auditevent_no_update
    BEFORE UPDATE ON compliance_auditevent
    BEGIN
        SELECT RAISE(ABORT, 'audit events are append-only');
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS compliance_auditevent_no_delete
    BEFORE DELETE ON compliance_auditevent
    WHEN stepsync_audit_prune_before() IS NULL
        OR OLD."at" >= stepsync_audit_prune_before()
    BEGIN
        SELECT RAISE(ABORT, 'audit events are append-only');
    END
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS compliance_auditevent_no_update",
    "DROP TRIGGER IF EXISTS compliance_auditevent_no_delete",
]
POSTGRES_CREATE = [
    """
    CREATE OR REPLACE FUNCTION compliance_auditevent_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        cutoff text := current_setting('stepsync.audit_prune_before', true);
    BEGIN
        IF TG_OP = 'DELETE' AND coalesce(cutoff, '') <> ''
           AND OLD."at" < cutoff::timestamptz THEN
            RETURN OLD;
        END IF;
        IF TG_OP = 'TRUNCATE' AND cutoff = 'infinity' THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'audit events are append-only'
            USING ERRCODE = 'integrity_constraint_violation';
    END
    $$
    """,
    """
    CREATE TRIGGER compliance_auditevent_no_change
    BEFORE UPDATE OR DELETE ON compliance_auditevent
    FOR EACH ROW EXECUTE FUNCTION compliance_auditevent_guard()
    """,
    """
    CREATE TRIGGER compliance_auditevent_no_truncate
    BEFORE TRUNCATE ON compliance_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_auditevent_guard()
    """,
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS compliance_auditevent_no_change ON compliance_auditevent",
    "DROP TRIGGER IF EXISTS compliance_auditevent_no_truncate ON compliance_auditevent",
    "DROP FUNCTION IF EXISTS compliance_auditevent_guard()",
]


def _run(schema_editor: Any, statements: dict[str, list[str]]) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in statements:
        raise RuntimeError(f"no append-only triggers for database vendor {vendor}")
    for sql in statements[vendor]:
        schema_editor.execute(sql)


def create_triggers(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"sqlite": SQLITE_CREATE, "postgresql": POSTGRES_CREATE})


def drop_triggers(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP})


class Migration(migrations.Migration):
    dependencies = [("compliance", "0002_audit_trail")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
