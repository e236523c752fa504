"""Application field keys (stepsync/crypto.py): add a new key, re-encrypt old rows.

On PostgreSQL the at-rest encryption is the service's; what the application can
rotate is the key of its EncryptedTextField columns. The newest key (listed first)
encrypts; older keys keep decrypting until every row has been re-encrypted. The
rotation order (add the key everywhere, restart, re-encrypt, drop the old key) is in
stepsync/crypto.py's docstring.

Re-encryption walks each column by primary key in batches. Each batch is one
transaction that locks its rows before reading them (SELECT ... FOR UPDATE on
PostgreSQL; SQLite's IMMEDIATE transactions hold the write lock), so an update the
app makes meanwhile waits for the batch and is never overwritten with the old text.
Only the current batch is in memory.

Append-only models (their default queryset refuses ``update()``; the incident
timeline, whose database triggers refuse UPDATE too) cannot be rewritten: their
rows stay under the key that wrote them, so that key must stay in the ring (it
still decrypts) for as long as those rows are retained. ``reencrypt_fields``
counts them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.db import models, transaction
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


@dataclass(frozen=True)
class Reencrypted:
    """Rows rewritten under the newest key, and stale rows append-only models keep."""

    rows: int
    append_only_stale: int


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedTextField]]:
    """(model, field) for every EncryptedTextField of installed models."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                found.append((model, field))
    return found


def append_only(model: type[models.Model]) -> bool:
    """True when the model's default queryset refuses ``update()`` (append-only)."""
    queryset = model._default_manager.get_queryset()
    return type(queryset).update is not models.QuerySet.update


def _stale(model: type[models.Model], field: EncryptedTextField) -> models.QuerySet:
    current = f"{crypto.PREFIX}{crypto.keyring().current}:"
    rows = model._base_manager.annotate(_raw=Cast(field.attname, TextField()))
    return rows.exclude(**{f"{field.attname}__isnull": True}).exclude(
        _raw__startswith=current
    )


def _stale_batch(
    model: type[models.Model], field: EncryptedTextField, after: object, size: int
) -> list[tuple[object, str]]:
    """Lock and return (pk, stored value) of the next ``size`` rows after ``after``
    whose value is not in the current format under the newest key."""
    rows = _stale(model, field).select_for_update()
    if after is not None:
        rows = rows.filter(pk__gt=after)
    return list(rows.order_by("pk").values_list("pk", "_raw")[:size])


def reencrypt_field(
    model: type[models.Model],
    field: EncryptedTextField,
    *,
    batch: int = BATCH,
    after_read: Callable[[list[object]], None] | None = None,
) -> int:
    """Re-encrypt one column under the newest key; returns the rows rewritten.

    ``after_read`` (tests) is called with the locked batch's primary keys before
    they are rewritten, inside the batch's transaction.
    """
    changed = 0
    last: object = None
    context = field.crypto_context
    while True:
        with transaction.atomic():
            stale = _stale_batch(model, field, last, batch)
            if not stale:
                return changed
            if after_read is not None:
                after_read([pk for pk, _ in stale])
            for pk, raw in stale:
                if crypto.is_current(raw):
                    continue  # SQLite's LIKE ignores case: the prefilter may let it by
                text = (
                    crypto.decrypt(raw, context=context)
                    if crypto.key_id_of(raw)
                    else raw
                )
                model._base_manager.filter(pk=pk).update(**{field.attname: text})
                changed += 1
            last = stale[-1][0]


def reencrypt_fields(*, batch: int = BATCH) -> Reencrypted:
    """Re-encrypt every value not under the current key (append-only models are
    counted, not rewritten). Idempotent: a second run rewrites nothing."""
    rows = kept = 0
    for model, field in encrypted_fields():
        if append_only(model):
            kept += _stale(model, field).count()
        else:
            rows += reencrypt_field(model, field, batch=batch)
    return Reencrypted(rows=rows, append_only_stale=kept)


def field_key_rotate(*, now: datetime) -> FieldRotation:
    """Prepend a new key to the field key file, then re-encrypt old rows."""
    if os.environ.get(crypto.ENV, "").strip():
        raise RotationUnsupported(
            f"{crypto.ENV} is set in the environment; add the new key there "
            "(newest first), restart every process, then run reencrypt_fields."
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
    return FieldRotation(key_id=key_id, reencrypted=reencrypt_fields().rows)
