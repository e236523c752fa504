"""Guard the audit chain head row with triggers (SQLite/SQLCipher and PostgreSQL).

Refused: deleting the row (outside the test suite's flush, the only caller that
opens the prune window for everything), renaming the chain, lowering the head's
seq, rewriting the MAC at the same seq, and moving the base (the last pruned link)
backwards, or forwards outside the prune window that audit retention opens.

First, an existing row gets the chain id derived from AUDIT_HMAC_KEY (compliance.chain
derives the same value; older rows held a random id that a database writer could
change to make earlier exported heads look foreign). NOTE: on SQLite, a later
migration that rebuilds compliance_auditchainhead drops these triggers and must
re-create them (compliance.appendonly.triggers_present checks them by name).
"""

import hashlib
import hmac
from typing import Any

from django.db import migrations

TABLE = "compliance_auditchainhead"
EVERYTHING = "9999-12-31 23:59:59.999999"
REWRITE = """
    NEW.id <> OLD.id OR NEW.chain_id <> OLD.chain_id OR NEW.seq < OLD.seq
    OR (NEW.seq = OLD.seq AND NEW.mac <> OLD.mac)
    OR NEW.base_seq < OLD.base_seq
"""
BASE_MOVED = "(NEW.base_seq <> OLD.base_seq OR NEW.base_mac <> OLD.base_mac)"
SQLITE_CREATE = [
    f"""
    CREATE TRIGGER IF NOT EXISTS {TABLE}_no_rewrite
    BEFORE UPDATE ON {TABLE}
    WHEN {REWRITE}
        OR ({BASE_MOVED} AND stepsync_audit_prune_before() IS NULL)
    BEGIN
        SELECT RAISE(ABORT, 'the audit chain head is append-only');
    END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete
    BEFORE DELETE ON {TABLE}
    WHEN stepsync_audit_prune_before() IS NULL
        OR stepsync_audit_prune_before() <> '{EVERYTHING}'
    BEGIN
        SELECT RAISE(ABORT, 'the audit chain head is append-only');
    END
    """,
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_rewrite",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_delete",
]
POSTGRES_CREATE = [
    f"""
    CREATE OR REPLACE FUNCTION {TABLE}_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        cutoff text := coalesce(
            current_setting('stepsync.audit_prune_before', true), '');
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            IF {REWRITE} OR ({BASE_MOVED} AND cutoff = '') THEN
                RAISE EXCEPTION 'the audit chain head is append-only'
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END IF;
        IF cutoff = 'infinity' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'the audit chain head is append-only'
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


def derive_chain_id(apps: Any, schema_editor: Any) -> None:
    """Give an existing head row the key-derived chain id (reads the key only then)."""
    from stepsync import secrets as secret_store

    head_model = apps.get_model("compliance", "AuditChainHead")
    if not head_model.objects.using(schema_editor.connection.alias).exists():
        return
    key = bytes.fromhex(secret_store.read_secret(secret_store.AUDIT_HMAC_KEY))
    name = hmac.new(key, b"stepsync.audit.chain_id.v1", hashlib.sha256).hexdigest()
    head_model.objects.using(schema_editor.connection.alias).update(chain_id=name[:32])


def _run(schema_editor: Any, statements: dict[str, list[str]]) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in statements:
        raise RuntimeError(f"no chain head triggers for database vendor {vendor}")
    for sql in statements[vendor]:
        schema_editor.execute(sql)


def create_triggers(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"sqlite": SQLITE_CREATE, "postgresql": POSTGRES_CREATE})


def drop_triggers(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP})


class Migration(migrations.Migration):
    dependencies = [("compliance", "0006_audit_actions_legal_hold_permission")]

    operations = [
        migrations.RunPython(derive_chain_id, migrations.RunPython.noop),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
