"""Indexes that no query needs, each one more encrypted page written with every
stored row (bench_turn: 40 -> 34 pages per LLM-answered turn with 0008):

- Message.conversation and Conversation.user: the composite indexes
  chat_msg_conv_created (conversation_id, created_at) and chat_conv_user_activity
  (user_id, last_activity_at) serve every lookup by conversation and by user;
- LLMCall.user_id and LLMCall.outcome: every reader of LLM calls (ops figures,
  the retention purge) selects by created_at.

They are dropped by name rather than by AlterField, which on SQLite rebuilds the
whole table. PostgreSQL's extra pattern index of the outcome column goes too; the
reverse migration recreates plain indexes only.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DROPPED = (
    ("chat_message_conversation_id_a1207bf4", "chat_message", "conversation_id"),
    ("chat_conversation_user_id_15357b84", "chat_conversation", "user_id"),
    ("chat_llmcall_user_id_fda913fc", "chat_llmcall", "user_id"),
    ("chat_llmcall_outcome_40855763", "chat_llmcall", "outcome"),
)
PATTERN_INDEX = "chat_llmcall_outcome_40855763_like"  # PostgreSQL only


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0002_conversation_continued_from"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="conversation",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="chat.conversation",
                    ),
                ),
                migrations.AlterField(
                    model_name="llmcall",
                    name="user_id",
                    field=models.BigIntegerField(blank=True, null=True),
                ),
                migrations.AlterField(
                    model_name="llmcall",
                    name="outcome",
                    field=models.CharField(max_length=32),
                ),
                migrations.AlterField(
                    model_name="conversation",
                    name="user",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="conversations",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX "{name}" ON "{table}" ("{column}")',
                )
                for name, table, column in DROPPED
            ]
            + [migrations.RunSQL(f'DROP INDEX IF EXISTS "{PATTERN_INDEX}"', "")],
        ),
    ]
