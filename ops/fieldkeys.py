"""Application field keys (stepsync/crypto.py): add a new key, re-encrypt old rows.

On PostgreSQL the at-rest encryption is the service's; what the application can
rotate is the key of its EncryptedTextField columns. The newest key (listed first)
encrypts; older keys keep decrypting until every row has been re-encrypted.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from ops.cipherfile import key_fingerprint
from ops.exceptions import RotationUnsupported
from ops.models import KeyRecord
from stepsync import crypto
from stepsync.fields import EncryptedTextField
from stepsync.secrets import write_key_file

BATCH = 500


@dataclass(frozen=True)
class FieldRotation:
    key_id: str
    reencrypted: int


def encrypted_fields() -> list[tuple[type, str]]:
    """(model, field name) for every EncryptedTextField of installed models."""
    found = []
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, EncryptedTextField):
                found.append((model, field.name))
    return found


def reencrypt_fields() -> int:
    """Re-encrypt every value not under the current key; returns rows changed."""
    current = crypto.keyring().current
    changed = 0
    for model, name in encrypted_fields():
        rows = (
            model._default_manager.annotate(_raw=Cast(name, TextField()))
            .exclude(**{f"{name}__isnull": True})
            .values_list("pk", "_raw")
        )
        stale = [
            (pk, raw) for pk, raw in rows.iterator() if crypto.key_id_of(raw) != current
        ]
        for start in range(0, len(stale), BATCH):
            with transaction.atomic():
                for pk, raw in stale[start : start + BATCH]:
                    text = crypto.decrypt(raw) if crypto.key_id_of(raw) else raw
                    model._default_manager.filter(pk=pk).update(**{name: text})
                    changed += 1
    return changed


def field_key_rotate(*, now: datetime) -> FieldRotation:
    """Prepend a new key to the field key file, then re-encrypt old rows."""
    if os.environ.get(crypto.ENV, "").strip():
        raise RotationUnsupported(
            f"{crypto.ENV} is set in the environment; add the new key there "
            "(newest first) and run reencrypt_fields."
        )
    new_hex = secrets.token_hex(32)
    key_id = f"k{now:%Y%m%d%H%M%S}"
    spec = crypto._read_spec()
    write_key_file(crypto._key_file(), f"{key_id}:{new_hex},{spec}")
    crypto.keyring.cache_clear()
    KeyRecord.objects.create(
        purpose="field",
        key_id=key_id,
        fingerprint=key_fingerprint(new_hex),
        created_at=now,
    )
    return FieldRotation(key_id=key_id, reencrypted=reencrypt_fields())
