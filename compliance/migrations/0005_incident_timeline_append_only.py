"""Incident timeline rows become append-only in the database too.

The actor column loses its foreign-key constraint (a user's deletion must not
UPDATE timeline rows), then triggers refuse UPDATE, and DELETE (TRUNCATE on
PostgreSQL) outside the compliance prune window of compliance/appendonly.py: the
window that audit retention and the test suite's flush open. NOTE: on SQLite a
later migration that rebuilds compliance_incidentupdate drops these triggers and
must re-create them (tests/compliance/test_incidents.py checks they refuse).
"""

from typing import Any

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TABLE = "compliance_incidentupdate"
SQLITE_CREATE = [
    f"""
    CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update
    BEFORE UPDATE ON {TABLE}
    BEGIN
        SELECT RAISE(ABORT, 'incident timeline rows are append-only');
    END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete
    BEFORE DELETE ON {TABLE}
    WHEN stepsync_audit_prune_before() IS NULL
        OR OLD."at" >= stepsync_audit_prune_before()
    BEGIN
        SELECT RAISE(ABORT, 'incident timeline rows are append-only');
    END
    """,
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_delete",
]
POSTGRES_CREATE = [
    f"""
    CREATE OR REPLACE FUNCTION {TABLE}_guard() RETURNS trigger
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
        RAISE EXCEPTION 'incident timeline rows are append-only'
            USING ERRCODE = 'integrity_constraint_violation';
    END
    $$
    """,
    f"""
    CREATE TRIGGER {TABLE}_no_change
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_guard()
    """,
    f"""
    CREATE TRIGGER {TABLE}_no_truncate
    BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_guard()
    """,
]
POSTGRES_DROP = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_change ON {TABLE}",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
    f"DROP FUNCTION IF EXISTS {TABLE}_guard()",
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
    dependencies = [
        ("compliance", "0004_retentionrun_checkpoint"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="incidentupdate",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
