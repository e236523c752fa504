"""Model fields that encrypt their value in the application (see stepsync/crypto.py)."""

from __future__ import annotations

from typing import Any

from django.db import models

from stepsync import crypto


class EncryptedTextField(models.TextField):
    """Text stored as AES-GCM ciphertext; reads return plaintext. Not searchable."""

    description = "Text encrypted by the application (AES-256-GCM)"

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None:
            return None
        return crypto.encrypt(str(value))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return crypto.decrypt(value)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name not in ("isnull",):
            return None  # ciphertext cannot be compared; only isnull makes sense
        return super().get_lookup(lookup_name)
