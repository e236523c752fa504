"""Application-level field encryption: AES-256-GCM with key ids, for data at rest.

SQLCipher encrypts the embedded database file; PostgreSQL (the scale-out shape) does
not get SQLCipher, so message text is encrypted by the application there — and here too,
so one code path is tested on both. Keys come from ``FIELD_ENCRYPTION_KEYS``
(``id:hex64`` entries, newest first) or its key file; the newest key encrypts, every
listed key decrypts, and ``manage.py reencrypt_fields`` moves old rows to the newest.
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

PREFIX = "enc1:"
ENV = "FIELD_ENCRYPTION_KEYS"
FILE_ENV = "FIELD_ENCRYPTION_KEYS_FILE"
DEFAULT_FILE = VAR_DIR / "field_keys"
ENTRY = re.compile(r"([A-Za-z0-9_-]{1,16}):([0-9a-fA-F]{64})")


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


@lru_cache(maxsize=1)
def keyring() -> Keyring:
    """Parse the configured keys once per process; raise SecretError when malformed."""
    entries = [part.strip() for part in _read_spec().split(",") if part.strip()]
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


def encrypt(plaintext: str) -> str:
    """Encrypt text as ``enc1:<key id>:<base64 nonce+ciphertext>``."""
    ring = keyring()
    nonce = secrets.token_bytes(12)
    sealed = ring.keys[ring.current].encrypt(
        nonce, plaintext.encode(), ring.current.encode()
    )
    return f"{PREFIX}{ring.current}:{base64.b64encode(nonce + sealed).decode()}"


def key_id_of(stored: str) -> str | None:
    """The key id of a stored value, or None when it is not encrypted."""
    if not stored.startswith(PREFIX):
        return None
    return stored[len(PREFIX) :].split(":", 1)[0]


def decrypt(stored: str) -> str:
    """Decrypt a value written by ``encrypt``; raise FieldCryptoError otherwise."""
    kid = key_id_of(stored)
    if kid is None:
        raise FieldCryptoError("value is not encrypted")
    aead = keyring().keys.get(kid)
    if aead is None:
        raise FieldCryptoError(f"unknown field key id {kid!r}")
    try:
        blob = base64.b64decode(stored.split(":", 2)[2], validate=True)
        return aead.decrypt(blob[:12], blob[12:], kid.encode()).decode()
    except (InvalidTag, ValueError, IndexError):
        raise FieldCryptoError("field value failed authentication") from None


def ensure_key_file() -> bool:
    """Create the field key file with one fresh key if no keys are configured."""
    if os.environ.get(ENV, "").strip() or _key_file().exists():
        return False
    write_key_file(_key_file(), f"k1:{secrets.token_hex(32)}")
    return True
