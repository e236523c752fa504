"""Application-level field encryption: AES-256-GCM with key ids, for data at rest.

SQLCipher encrypts the embedded database file; PostgreSQL (the scale-out shape) does
not get SQLCipher, so message text is encrypted by the application there — and here too,
so one code path is tested on both. Keys come from ``FIELD_ENCRYPTION_KEYS``
(``id:hex64`` entries, newest first) or its key file; the newest key encrypts, every
listed key decrypts, and ``manage.py reencrypt_fields`` moves old rows to the newest.

Stored form: ``enc2:<key id>:<base64 nonce + ciphertext>``. The associated data binds
the key id AND the field's identity (``<app>.<model>.<field>``), so a ciphertext
copied into another column fails authentication instead of decrypting there. The
older ``enc1:`` form (associated data = key id only) still decrypts; re-encryption
rewrites it as ``enc2:``. Ciphertexts are not bound to their row: the primary key
does not exist yet when a row is first written.

Key rotation, in this order (every process must know a key before any row uses it):
1. add the new key FIRST in FIELD_ENCRYPTION_KEYS (or the key file) on every host,
   keeping the old one after it;
2. restart every app server and job runner (the environment is read at start; a key
   FILE is also re-read once when a process meets a key id it does not know);
3. run ``manage.py reencrypt_fields`` (idempotent; batches with row locks);
4. only then remove the old key, and restart again.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stepsync.secrets import VAR_DIR, SecretError, write_key_file

PREFIX = "enc2:"
LEGACY_PREFIX = "enc1:"
ENV = "FIELD_ENCRYPTION_KEYS"
FILE_ENV = "FIELD_ENCRYPTION_KEYS_FILE"
DEFAULT_FILE = VAR_DIR / "field_keys"
ENTRY = re.compile(r"([A-Za-z0-9_-]{1,16}):([0-9a-fA-F]{64})")
CONTEXT = re.compile(r"[a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+")


class FieldCryptoError(Exception):
    """A field could not be encrypted or decrypted; the message holds no data."""


@dataclass(frozen=True)
class Keyring:
    """Field keys by id; ``current`` encrypts."""

    current: str
    keys: dict[str, AESGCM]


def _key_file() -> Path:
    value = os.environ.get(FILE_ENV, "").strip()
    return Path(value) if value else DEFAULT_FILE


def _read_spec() -> str:
    value = os.environ.get(ENV, "").strip()
    if value:
        return value
    path = _key_file()
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise SecretError(
            f"{ENV} is not set and key file {path} ({FILE_ENV}) does not exist"
        ) from None


def keyring_from_spec(spec: str) -> Keyring:
    """Parse ``id:hex64[,id:hex64...]`` (newest first); raise SecretError if bad."""
    entries = [part.strip() for part in spec.split(",") if part.strip()]
    keys: dict[str, AESGCM] = {}
    for entry in entries:
        match = ENTRY.fullmatch(entry)
        if match is None:
            raise SecretError(f"{ENV} entries must look like id:<64 hex characters>")
        keys[match.group(1)] = AESGCM(bytes.fromhex(match.group(2)))
    if not keys:
        raise SecretError(f"{ENV} is empty")
    first = ENTRY.fullmatch(entries[0])
    assert first is not None
    return Keyring(current=first.group(1), keys=keys)


@lru_cache(maxsize=1)
def keyring() -> Keyring:
    """Parse the configured keys once per process; raise SecretError when malformed."""
    return keyring_from_spec(_read_spec())


def _aad(kid: str, context: str) -> bytes:
    return b"stepsync-field\x00" + kid.encode() + b"\x00" + context.encode()


def _check_context(context: str) -> None:
    if CONTEXT.fullmatch(context) is None:
        raise FieldCryptoError("field context must look like app.model.field")


def encrypt(plaintext: str, *, context: str, ring: Keyring | None = None) -> str:
    """Encrypt text for the field ``context`` (``app.model.field``) under the
    newest key as ``enc2:<key id>:<base64 nonce+ciphertext>``."""
    _check_context(context)
    ring = ring or keyring()
    nonce = secrets.token_bytes(12)
    sealed = ring.keys[ring.current].encrypt(
        nonce, plaintext.encode(), _aad(ring.current, context)
    )
    return f"{PREFIX}{ring.current}:{base64.b64encode(nonce + sealed).decode()}"


def key_id_of(stored: str) -> str | None:
    """The key id of a stored value, or None when it is not encrypted."""
    for prefix in (PREFIX, LEGACY_PREFIX):
        if stored.startswith(prefix):
            return stored[len(prefix) :].split(":", 1)[0]
    return None


def is_current(stored: str, ring: Keyring | None = None) -> bool:
    """True when ``stored`` is in the current format under the newest key."""
    ring = ring or keyring()
    return stored.startswith(PREFIX) and key_id_of(stored) == ring.current


def _key_for(kid: str, ring: Keyring | None) -> AESGCM:
    """The key ``kid``; a process that does not know it re-reads its keys once
    (another host may have rotated and re-encrypted meanwhile), then gives up."""
    if ring is not None:
        found = ring.keys.get(kid)
    else:
        found = keyring().keys.get(kid)
        if found is None:
            keyring.cache_clear()
            found = keyring().keys.get(kid)
    if found is None:
        raise FieldCryptoError(
            f"unknown field key id {kid!r}: add it to {ENV} (or its key file)"
        )
    return found


def decrypt(stored: str, *, context: str, ring: Keyring | None = None) -> str:
    """Decrypt a value written by ``encrypt`` for the same field ``context``.

    Raises FieldCryptoError (no data in the message) for plaintext, an unknown key
    id, a value altered or written for another field.
    """
    _check_context(context)
    kid = key_id_of(stored)
    if kid is None:
        raise FieldCryptoError("value is not encrypted")
    aead = _key_for(kid, ring)
    aad = _aad(kid, context) if stored.startswith(PREFIX) else kid.encode()
    try:
        blob = base64.b64decode(stored.split(":", 2)[2], validate=True)
        return aead.decrypt(blob[:12], blob[12:], aad).decode()
    except (InvalidTag, ValueError, IndexError):
        raise FieldCryptoError(
            f"field value failed authentication for {context} "
            "(altered, or written for another field)"
        ) from None


def ensure_key_file() -> bool:
    """Create the field key file with one fresh key if no keys are configured."""
    if os.environ.get(ENV, "").strip() or _key_file().exists():
        return False
    write_key_file(_key_file(), f"k1:{secrets.token_hex(32)}")
    return True
