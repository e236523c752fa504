"""Model fields that encrypt their value in the application (see stepsync/crypto.py)."""

from __future__ import annotations

from typing import Any

from django.db import models

from stepsync import crypto


class EncryptedTextField(models.TextField):
    """Text stored as AES-GCM ciphertext bound to this field; reads return plaintext.

    Not searchable: only ``isnull`` lookups exist. The ciphertext's associated data
    names the field (``crypto_context``), so a value copied into another column or
    model fails to decrypt there.
    """

    description = "Text encrypted by the application (AES-256-GCM)"

    @property
    def crypto_context(self) -> str:
        """``app_label.model_name.field_name``: the identity bound into the AAD."""
        return f"{self.model._meta.label_lower}.{self.name}"

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None:
            return None
        return crypto.encrypt(str(value), context=self.crypto_context)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return crypto.decrypt(value, context=self.crypto_context)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name not in ("isnull",):
            return None  # ciphertext cannot be compared; only isnull makes sense
        return super().get_lookup(lookup_name)
