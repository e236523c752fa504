"""Rotate the SQLCipher database key safely (RELIABILITY.md §A.3).

Order, under the maintenance lock held by this process:
1. no pending key file from an interrupted rotation (else tell which file opens it);
2. exclusive access proven (ops.maintenance: no other descriptor, SQLite's lock),
   row counts taken;
3. a verified encrypted backup (the caller's ``backup``);
4. the new key written to ``<key file>.pending`` (0600, fsync'd) BEFORE the rekey,
   so it is never only in memory;
5. the rekey on a dedicated connection, closed at once on any error and never
   reused, then ``wal_checkpoint(TRUNCATE)``;
6. old key refused, new key accepted, integrity clean, row counts unchanged;
7. the old key appended to ``<key file>.history`` (0600, with its key id), then the
   pending file atomically replaces the key file.
A failure before step 7 leaves the database on the old key and the pending file
removed; a crash after step 5 leaves the pending file, which ``pending_state`` (the
``ops.W001`` system check and ``rotate_db_key``) names as the key to use.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlcipher3 import dbapi2 as Database

from ops import cipherfile, maintenance
from ops.exceptions import PendingKeyFound, RotationFailed
from stepsync.db.sqlcipher.errors import DatabaseKeyError
from stepsync.secrets import HEX64

logger = logging.getLogger(__name__)
REKEY_BUSY_MS = 1000
Progress = Callable[[str], None]


@dataclass(frozen=True)
class RotationResult:
    key_id: str
    fingerprint: str
    old_fingerprint: str
    row_counts: dict[str, int]
    seconds: float


def new_key_hex() -> str:
    return secrets.token_hex(32)


def pending_path(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".pending")


def history_path(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".history")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_private(path: Path, text: str, *, append: bool = False) -> None:
    """Write (or append) ``text`` to a 0600 file and fsync it and its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_dir(path.parent)


def _opens(db_path: Path, key_hex: str) -> bool:
    try:
        conn = cipherfile.open_file(db_path, key_hex)
    except (DatabaseKeyError, Database.Error):
        return False
    conn.close()
    return True


def _read_key(path: Path) -> str | None:
    try:
        value = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return value if HEX64.fullmatch(value) else None


def pending_state(*, db_path: Path, key_file: Path, current_key: str | None) -> str:
    """ "none", or which key opens the database while a pending file exists:
    "pending" (the rotation stopped after its rekey), "current" (it stopped
    before), or "neither"."""
    pending = pending_path(key_file)
    if not pending.exists():
        return "none"
    new_key = _read_key(pending)
    if new_key is not None and _opens(db_path, new_key):
        return "pending"
    if current_key is not None and _opens(db_path, current_key):
        return "current"
    return "neither"


def pending_advice(*, state: str, key_file: Path) -> str:
    """What the operator should do about a pending key file (names files only)."""
    pending = pending_path(key_file)
    if state == "pending":
        return (
            f"The database opens with the key in {pending} (a rotation stopped after "
            f"its rekey): run `manage.py rotate_db_key --finish` (or move {pending} "
            f"over {key_file}), then restart the app."
        )
    if state == "current":
        return (
            f"The database opens with {key_file}; {pending} is left from a rotation "
            "that stopped before its rekey: run `manage.py rotate_db_key --finish` "
            "(or delete it)."
        )
    return (
        f"Neither {key_file} nor {pending} opens the database: keep both files and "
        "restore the latest backup (manage.py restore_db latest)."
    )


def refuse_if_pending(*, db_path: Path, key_file: Path, key: str | None) -> None:
    """PendingKeyFound (saying which file opens the database) if a pending key exists."""
    state = pending_state(db_path=db_path, key_file=key_file, current_key=key)
    if state != "none":
        raise PendingKeyFound(pending_advice(state=state, key_file=key_file))


def finish_pending(
    *,
    db_path: Path,
    key_file: Path,
    current_key: str | None,
    current_key_id: str = "unknown",
) -> str:
    """Complete an interrupted rotation: install the pending key if it is the one
    that opens the database, else drop it. Returns the state it found."""
    state = pending_state(db_path=db_path, key_file=key_file, current_key=current_key)
    pending = pending_path(key_file)
    if state == "pending":
        if current_key is not None:
            _write_private(
                history_path(key_file), f"{current_key_id} {current_key}\n", append=True
            )
        os.replace(pending, key_file)
        _fsync_dir(key_file.parent)
    elif state == "current":
        pending.unlink(missing_ok=True)
    elif state == "neither":
        raise PendingKeyFound(pending_advice(state=state, key_file=key_file))
    return state


def rotate_key(
    *,
    db_path: Path,
    old_key: str,
    key_file: Path,
    key_id: str,
    old_key_id: str = "initial",
    new_key: str | None = None,
    backup: Callable[[], None] | None = None,
    progress: Progress | None = None,
) -> RotationResult:
    """Rekey ``db_path`` from ``old_key`` to a new key and install it in ``key_file``.

    ``backup`` runs after exclusive access was proven and before the rekey; it must
    write and verify an encrypted backup or raise. ``progress`` is told each step
    ("exclusive", "backup", "pending_written", "rekeying", "rekeyed", "verified",
    "key_file_written"). Raises MaintenanceRequired without the maintenance lock,
    PendingKeyFound after an interrupted rotation, DatabaseInUse when anything else
    has the file open, RotationFailed when the rekey or its check fails. Keys are
    never logged.
    """
    started = time.perf_counter()
    step = progress or (lambda name: None)
    refuse_if_pending(db_path=db_path, key_file=key_file, key=old_key)
    before = _counts_exclusively(db_path, old_key)
    step("exclusive")
    if backup is not None:
        backup()
        step("backup")
    new_key = new_key or new_key_hex()
    pending = pending_path(key_file)
    _write_private(pending, new_key + "\n")
    step("pending_written")
    try:
        _rekey_dedicated(db_path, old_key, new_key, step)
        step("rekeyed")
        _verify_rotated(db_path, old_key, new_key, before)
    except RotationFailed:
        _rekey_back(db_path, new_key, old_key)
        _settle(db_path, old_key, key_file)
        raise
    except Exception:
        _settle(db_path, old_key, key_file)
        raise
    step("verified")
    _write_private(history_path(key_file), f"{old_key_id} {old_key}\n", append=True)
    os.replace(pending, key_file)
    _fsync_dir(key_file.parent)
    step("key_file_written")
    return RotationResult(
        key_id=key_id,
        fingerprint=cipherfile.key_fingerprint(new_key),
        old_fingerprint=cipherfile.key_fingerprint(old_key),
        row_counts=before,
        seconds=time.perf_counter() - started,
    )


def _exclusive(db_path: Path, key: str) -> Database.Connection:
    try:
        return maintenance.exclusive_connection(db_path, key)
    except DatabaseKeyError:
        raise RotationFailed("The current key does not open the database.") from None


def _counts_exclusively(db_path: Path, key: str) -> dict[str, int]:
    conn = _exclusive(db_path, key)
    try:
        return cipherfile.row_counts(conn)
    finally:
        conn.close()


def _rekey_dedicated(db_path: Path, old_key: str, new_key: str, step: Progress) -> None:
    """Prove exclusive access again, then rekey on a fresh dedicated connection.

    On any error that connection is closed before anything else happens: writing
    through a connection whose rekey failed makes the file unreadable with both keys
    (§A.3). A lock taken by a process that ignored maintenance mode makes the rekey
    wait REKEY_BUSY_MS and fail; the file then still opens with the old key.
    """
    _exclusive(db_path, old_key).close()
    step("rekeying")
    try:
        conn = cipherfile.open_file(db_path, old_key, busy_ms=REKEY_BUSY_MS)
    except (DatabaseKeyError, Database.Error):
        raise RotationFailed() from None
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
    if _opens(db_path, old_key):
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


def _settle(db_path: Path, old_key: str, key_file: Path) -> None:
    """After a failure: drop the pending key if the old key still opens the file;
    otherwise keep it and say which file to use."""
    if _opens(db_path, old_key):
        pending_path(key_file).unlink(missing_ok=True)
        return
    logger.error("ops.rotation.pending_key_kept")
    raise RotationFailed(
        pending_advice(
            state=pending_state(db_path=db_path, key_file=key_file, current_key=None),
            key_file=key_file,
        )
    )
