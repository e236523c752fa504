"""Rotate the SQLCipher database key safely (RELIABILITY.md §A.3).

Order: exclusive access (other connections refused) → verified encrypted backup →
rekey on a dedicated connection that is closed at once on any error and never reused
→ ``wal_checkpoint(TRUNCATE)`` → old key refused, new key accepted, integrity clean and
row counts unchanged → only then the new key goes to the key file (atomic, 0600).
Any failure before the key file is written leaves the database on the old key.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlcipher3 import dbapi2 as Database

from ops import cipherfile
from ops.exceptions import DatabaseInUse, RotationFailed
from stepsync.db.sqlcipher.errors import DatabaseKeyError
from stepsync.secrets import write_key_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RotationResult:
    key_id: str
    fingerprint: str
    old_fingerprint: str
    row_counts: dict[str, int]
    seconds: float


def new_key_hex() -> str:
    return secrets.token_hex(32)


def rotate_key(
    *,
    db_path: Path,
    old_key: str,
    key_file: Path,
    new_key: str | None = None,
    backup: callable | None = None,  # type: ignore[valid-type]
) -> RotationResult:
    """Rekey ``db_path`` from ``old_key`` to a new key and write it to ``key_file``.

    ``backup`` is called (with no arguments) after exclusive access was confirmed and
    before the rekey; it must write and verify an encrypted backup or raise.
    Raises DatabaseInUse when other connections have the file open, RotationFailed
    when the rekey or its verification fails. Keys are never logged.
    """
    started = time.perf_counter()
    new_key = new_key or new_key_hex()
    probe = _exclusive_or_refuse(db_path, old_key)
    try:
        before = cipherfile.row_counts(probe)
    finally:
        probe.close()
    if backup is not None:
        backup()
    _rekey_dedicated(db_path, old_key, new_key)
    try:
        _verify_rotated(db_path, old_key, new_key, before)
    except RotationFailed:
        _rekey_back(db_path, new_key, old_key)
        raise
    write_key_file(key_file, new_key)
    return RotationResult(
        key_id=time.strftime("k%Y%m%d%H%M%S", time.gmtime()),
        fingerprint=cipherfile.key_fingerprint(new_key),
        old_fingerprint=cipherfile.key_fingerprint(old_key),
        row_counts=before,
        seconds=time.perf_counter() - started,
    )


def _exclusive_or_refuse(db_path: Path, key: str) -> Database.Connection:
    try:
        return cipherfile.open_exclusive(db_path, key)
    except DatabaseKeyError:
        raise RotationFailed("The current key does not open the database.") from None
    except Database.OperationalError:
        raise DatabaseInUse() from None


def _rekey_dedicated(db_path: Path, old_key: str, new_key: str) -> None:
    """Rekey on a fresh exclusive connection; on any error close it and stop.

    Writing through a connection whose rekey failed makes the file unreadable with
    both keys (§A.3), so the connection is closed before anything else happens.
    """
    conn = _exclusive_or_refuse(db_path, old_key)
    try:
        cipherfile.rekey(conn, new_key)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except Database.Error as exc:
        conn.close()
        logger.warning("ops.rotation.rekey_failed error=%s", type(exc).__name__)
        raise RotationFailed() from None
    conn.close()


def _verify_rotated(
    db_path: Path, old_key: str, new_key: str, before: dict[str, int]
) -> None:
    try:
        stale = cipherfile.open_file(db_path, old_key)
    except DatabaseKeyError:
        stale = None
    if stale is not None:
        stale.close()
        raise RotationFailed("The old key still opens the database after rekey.")
    try:
        conn = cipherfile.open_file(db_path, new_key)
    except (DatabaseKeyError, Database.Error):
        raise RotationFailed("The new key does not open the database.") from None
    try:
        result = cipherfile.integrity(conn)
        after = cipherfile.row_counts(conn)
    finally:
        conn.close()
    if not result.ok or after != before:
        raise RotationFailed("The database failed verification after rekey.")


def _rekey_back(db_path: Path, new_key: str, old_key: str) -> None:
    """Best effort: return a file that verified badly to the old key."""
    try:
        conn = cipherfile.open_exclusive(db_path, new_key)
    except (DatabaseKeyError, Database.Error):
        return
    try:
        cipherfile.rekey(conn, old_key)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except Database.Error:
        logger.error("ops.rotation.rekey_back_failed")
    finally:
        conn.close()
