"""Secret material: read from the environment or a key file, validate, create key files.

Runnable without Django: ``python -m stepsync.secrets init`` creates the embedded
default's key files (mode 0600) when they are absent. Values are never printed.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class SecretError(Exception):
    """A required secret is missing or malformed; the message names it, never its value."""


@dataclass(frozen=True)
class SecretSpec:
    """Where one secret comes from: an env var, or a file named by ``<env>_FILE``."""

    env: str
    default_file: Path
    hex64: bool  # exactly 64 hex characters (a raw 256-bit key)


DATABASE_KEY = SecretSpec("DATABASE_ENCRYPTION_KEY", VAR_DIR / "database.key", True)
SECRET_KEY = SecretSpec("SECRET_KEY", VAR_DIR / "secret_key", False)
AUDIT_HMAC_KEY = SecretSpec("AUDIT_HMAC_KEY", VAR_DIR / "audit_hmac.key", True)
BACKUP_KEY = SecretSpec("BACKUP_ENCRYPTION_KEY", VAR_DIR / "backup.key", True)
GENERATED = (DATABASE_KEY, SECRET_KEY, AUDIT_HMAC_KEY, BACKUP_KEY)

# The database key file's variable keeps the name the issue gives it.
FILE_VARIABLE = {DATABASE_KEY.env: "DATABASE_KEY_FILE"}


def file_variable(spec: SecretSpec) -> str:
    """Name of the environment variable that points at the spec's key file."""
    return FILE_VARIABLE.get(spec.env, f"{spec.env}_FILE")


def key_file_path(spec: SecretSpec) -> Path:
    """The key file path for a spec: ``<env>_FILE`` if set, else the default."""
    value = os.environ.get(file_variable(spec), "").strip()
    return Path(value) if value else spec.default_file


def read_secret(spec: SecretSpec) -> str:
    """Return the secret from its env var or key file; raise SecretError if absent or bad."""
    value = os.environ.get(spec.env, "").strip()
    source = spec.env
    if not value:
        path = key_file_path(spec)
        source = f"key file {path} ({file_variable(spec)})"
        try:
            value = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise SecretError(
                f"{spec.env} is not set and {source} does not exist"
            ) from None
        except (OSError, UnicodeDecodeError):
            raise SecretError(f"{source} cannot be read as ASCII text") from None
    if not value:
        raise SecretError(f"{source} is empty")
    if spec.hex64 and not HEX64.fullmatch(value):
        raise SecretError(f"{source} must be exactly 64 hexadecimal characters")
    return value


def write_key_file(path: Path, value: str) -> None:
    """Write a key file atomically with mode 0600 (created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def ensure_key_file(spec: SecretSpec) -> bool:
    """Create the spec's key file with a fresh random value if it is absent."""
    if os.environ.get(spec.env, "").strip():
        return False
    path = key_file_path(spec)
    if path.exists():
        return False
    value = secrets.token_hex(32) if spec.hex64 else secrets.token_urlsafe(50)
    write_key_file(path, value)
    return True


def main(argv: list[str]) -> int:
    """``init``: create missing key files; ``check``: validate all of them."""
    command = argv[1] if len(argv) > 1 else "init"
    try:
        for spec in GENERATED:
            if command == "init" and ensure_key_file(spec):
                print(f"created {key_file_path(spec)} (mode 0600)")
            read_secret(spec)
        from stepsync import crypto

        if command == "init" and crypto.ensure_key_file():
            print(f"created {crypto._key_file()} (mode 0600)")
        crypto.keyring()
    except SecretError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
