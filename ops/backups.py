"""Encrypted backups of the SQLCipher database: write, verify, prune and restore.

Follows RELIABILITY.md §A.4: ``ATTACH … KEY`` with the dedicated backup key (an empty
key would write plaintext, a missing KEY would reuse the main key), ``sqlcipher_export``
inside one read transaction so the row counts in the manifest match the copy, a header
check, integrity checks and a manifest with the sha256. A restore goes to a temporary
file, is re-keyed to the live key and verified, and replaces the live file only with
the app stopped and its stale ``-wal``/``-shm`` removed.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from sqlcipher3 import dbapi2 as Database

from ops import cipherfile, maintenance
from ops.exceptions import (
    BackupInvalid,
    BackupKeyMissing,
    BackupNotFound,
    RestoreFailed,
)
from stepsync.db.sqlcipher.errors import DatabaseKeyError
from stepsync.secrets import BACKUP_KEY, DATABASE_KEY, SecretError, read_secret

SUFFIX = ".sqlcipher"
MANIFEST_SUFFIX = ".manifest.json"
PARTIAL_SUFFIX = ".partial"
# A partial file untouched this long is left by a crashed backup, not being written.
ORPHAN_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class BackupResult:
    path: Path
    sha256: str
    size_bytes: int
    row_counts: dict[str, int]
    key_id: str
    created_at: datetime


@dataclass(frozen=True)
class RestoreResult:
    path: Path
    row_counts: dict[str, int]
    seconds: float


def backup_key() -> str:
    """The backup key, or BackupKeyMissing (never an empty or malformed key)."""
    try:
        return read_secret(BACKUP_KEY)
    except SecretError:
        raise BackupKeyMissing() from None


def live_database() -> tuple[Path, str]:
    """The embedded database file and its key (SQLCipher deployments only)."""
    return Path(settings.DATABASES["default"]["NAME"]), read_secret(DATABASE_KEY)


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + MANIFEST_SUFFIX)


def backup_create(
    *,
    now: datetime,
    backup_dir: Path,
    source_path: Path,
    source_key: str,
    key_hex: str,
) -> BackupResult:
    """Export ``source_path`` to an encrypted, verified backup with a manifest.

    Raises BackupKeyMissing for an empty key and BackupInvalid when the written file
    fails a check (the file is then removed).
    """
    if not key_hex or len(key_hex) != 64:
        raise BackupKeyMissing()
    backup_dir.mkdir(parents=True, exist_ok=True)
    final = backup_dir / f"stepsync-{now:%Y%m%dT%H%M%S%fZ}{SUFFIX}"
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    partial.unlink(missing_ok=True)
    conn = cipherfile.open_file(source_path, source_key, busy_ms=5000)
    try:
        conn.execute(cipherfile.attach_statement(partial, "bak", key_hex))
        conn.execute("BEGIN")
        counts = cipherfile.row_counts(conn)
        conn.execute("SELECT sqlcipher_export('bak')").fetchall()
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE bak")
    finally:
        conn.close()
    try:
        _check_file(partial, key_hex, counts)
    except BackupInvalid:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, final)
    result = BackupResult(
        path=final,
        sha256=cipherfile.file_sha256(final),
        size_bytes=final.stat().st_size,
        row_counts=counts,
        key_id=cipherfile.key_fingerprint(key_hex),
        created_at=now,
    )
    _write_manifest(result)
    return result


def _write_manifest(result: BackupResult) -> None:
    manifest = {
        "format": 1,
        "file": result.path.name,
        "sha256": result.sha256,
        "size_bytes": result.size_bytes,
        "row_counts": result.row_counts,
        "key_id": result.key_id,
        "created_at": result.created_at.isoformat(),
    }
    target = manifest_path(result.path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, target)


def _check_file(
    path: Path, key_hex: str, expected: dict[str, int] | None
) -> dict[str, int]:
    """Header not plaintext, opens with the key, integrity ok, counts as expected."""
    if not path.is_file() or cipherfile.header_is_plaintext(path):
        raise BackupInvalid("The backup file is missing or not encrypted.")
    try:
        conn = cipherfile.open_file(path, key_hex)
    except (DatabaseKeyError, Database.Error):
        raise BackupInvalid("The backup does not open with the backup key.") from None
    try:
        result = cipherfile.integrity(conn, full=True)
        counts = cipherfile.row_counts(conn)
    finally:
        conn.close()
    if not result.ok:
        raise BackupInvalid("The backup failed its integrity check.")
    if expected is not None and counts != expected:
        raise BackupInvalid("The backup's row counts differ from its manifest.")
    return counts


def manifest_read(path: Path) -> dict[str, Any]:
    """The backup's manifest, or BackupInvalid when missing or unreadable."""
    try:
        manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BackupInvalid("The backup's manifest is missing or unreadable.") from None
    if not isinstance(manifest, dict):
        raise BackupInvalid("The backup's manifest is missing or unreadable.")
    return manifest


def backup_verify(*, path: Path, key_hex: str) -> dict[str, int]:
    """Check a backup without restoring it: manifest, sha256, header, integrity, counts."""
    manifest = manifest_read(path)
    if not path.is_file() or cipherfile.file_sha256(path) != manifest.get("sha256"):
        raise BackupInvalid("The backup's sha256 does not match its manifest.")
    if manifest.get("key_id") != cipherfile.key_fingerprint(key_hex):
        raise BackupInvalid("The backup was made with a different backup key.")
    return _check_file(path, key_hex, manifest.get("row_counts"))


def backups_list(*, backup_dir: Path) -> list[Path]:
    if not backup_dir.is_dir():
        return []
    return sorted(backup_dir.glob(f"stepsync-*{SUFFIX}"))


def backup_resolve(value: str, *, backup_dir: Path) -> Path:
    """'latest' (the newest backup in ``backup_dir``) or an existing file path."""
    if value == "latest":
        found = backups_list(backup_dir=backup_dir)
        if not found:
            raise BackupNotFound()
        return found[-1]
    path = Path(value)
    if not path.is_file():
        raise BackupNotFound()
    return path


def _modified(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def backups_prune(*, now: datetime, backup_dir: Path, retention_days: int) -> int:
    """Delete backups (and manifests) older than ``retention_days``, keeping the
    newest, and leftovers of crashed runs (partial files, temporary manifests)."""
    cutoff = now - timedelta(days=retention_days)
    removed = 0
    for path in backups_list(backup_dir=backup_dir)[:-1]:
        if _modified(path) < cutoff:
            path.unlink(missing_ok=True)
            manifest_path(path).unlink(missing_ok=True)
            removed += 1
    if backup_dir.is_dir():
        leftovers = [
            *backup_dir.glob(f"stepsync-*{SUFFIX}{PARTIAL_SUFFIX}"),
            *backup_dir.glob(f"stepsync-*{MANIFEST_SUFFIX}.tmp"),
        ]
        for path in leftovers:
            if _modified(path) < now - ORPHAN_AFTER:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def restore_from_backup(
    *, backup_path: Path, key_hex: str, live_path: Path, live_key: str
) -> RestoreResult:
    """Restore a verified backup over the live file (the app must be stopped).

    Raises MaintenanceRequired without the maintenance lock held here,
    DatabaseInUse when anything else has the live file open, and
    BackupInvalid/RestoreFailed when a check fails; the live file is then untouched.
    """
    started = time.perf_counter()
    expected = backup_verify(path=backup_path, key_hex=key_hex)
    _ensure_not_in_use(live_path, live_key)
    staging = live_path.with_name(live_path.name + ".restore-tmp")
    for stale in (staging, *_sidecars(staging)):
        stale.unlink(missing_ok=True)
    source = cipherfile.open_file(backup_path, key_hex)
    try:
        cipherfile.export_to(source, staging, live_key)
    finally:
        source.close()
    try:
        counts = _check_file(staging, live_key, expected)
    except BackupInvalid:
        staging.unlink(missing_ok=True)
        raise RestoreFailed() from None
    # A stale WAL beside the new file would be replayed into it (§A.4).
    cipherfile.remove_sidecars(live_path)
    os.replace(staging, live_path)
    _fsync_dir(live_path.parent)
    return RestoreResult(
        path=live_path, row_counts=counts, seconds=time.perf_counter() - started
    )


def _sidecars(path: Path) -> list[Path]:
    return [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-journal")]


def _ensure_not_in_use(live_path: Path, live_key: str) -> None:
    if not live_path.exists():
        return
    try:
        conn = maintenance.exclusive_connection(live_path, live_key)
    except DatabaseKeyError:
        return  # an unreadable live file is exactly what a restore replaces
    except Database.DatabaseError:
        return  # so is a corrupt one; nobody else has it open (checked first)
    conn.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
