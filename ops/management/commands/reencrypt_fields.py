"""manage.py reencrypt_fields: move encrypted text columns to the newest field key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ops.fieldkeys import reencrypt_fields


class Command(BaseCommand):
    help = (
        "Re-encrypt every EncryptedTextField value that is not under the newest key "
        "of FIELD_ENCRYPTION_KEYS. Idempotent; run after adding a key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        changed = reencrypt_fields()
        self.stdout.write(f"reencrypt_fields ok reencrypted={changed}")
