"""manage.py reencrypt_fields: move encrypted text columns to the newest field key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ops.fieldkeys import BATCH, reencrypt_fields


class Command(BaseCommand):
    help = (
        "Re-encrypt every EncryptedTextField value that is not under the newest key "
        "of FIELD_ENCRYPTION_KEYS, in row-locked batches. Idempotent. Run it after "
        "the new key was added (first) on every host and every process restarted; "
        "drop an old key only when nothing is left under it (append_only_stale "
        "rows, which cannot be rewritten, keep their key needed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=BATCH, help="rows per batch")

    def handle(self, *args: Any, batch: int, **options: Any) -> None:
        result = reencrypt_fields(batch=max(1, batch))
        self.stdout.write(
            f"reencrypt_fields ok reencrypted={result.rows} "
            f"append_only_stale={result.append_only_stale}"
        )
