"""AuditEvent.actor loses its own index: audit_actor_at (actor_id, at) serves
lookups by actor, and each index is one more encrypted page written with every
audit event.

The index is dropped by name: AlterField would rebuild the table on SQLite and
with it drop the append-only triggers (0003) that guard it.
"""

from django.conf import settings
from django.db import migrations, models

INDEX = "compliance_auditevent_actor_id_9b6cacf0"


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0007_audit_chain_head_guard"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="actor",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=models.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=(
                        f'CREATE INDEX "{INDEX}" ON "compliance_auditevent" ("actor_id")'
                    ),
                ),
            ],
        ),
    ]
