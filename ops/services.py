"""Ops use cases: backups, restore, key rotation and the integrity check, with records.

Each function takes ``now`` (tests move it), records its outcome (BackupRecord,
KeyRecord, IntegrityCheck) and writes an audit event with ids and counts only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

from ops import backups, cipherfile, keyrotation
from ops.audit import ops_audit
from ops.exceptions import OpsError, RotationUnsupported
from ops.maintenance import maintenance_lock
from ops.models import BackupRecord, IntegrityCheck, KeyRecord
from stepsync.secrets import DATABASE_KEY, key_file_path


def uses_sqlcipher() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "stepsync.db.sqlcipher"


def backup_run(*, now: datetime, actor: Any = None) -> backups.BackupResult:
    """Write, verify, record and audit one encrypted backup, then prune old ones."""
    key_hex = backups.backup_key()
    source, source_key = backups.live_database()
    backup_dir = Path(settings.BACKUP_DIR)
    result = backups.backup_create(
        now=now,
        backup_dir=backup_dir,
        source_path=source,
        source_key=source_key,
        key_hex=key_hex,
    )
    record = BackupRecord.objects.create(
        path=str(result.path),
        sha256=result.sha256,
        size_bytes=result.size_bytes,
        key_id=result.key_id,
        row_counts=result.row_counts,
        verified=True,
        created_at=now,
    )
    pruned = backups.backups_prune(
        now=now, backup_dir=backup_dir, retention_days=settings.BACKUP_RETENTION_DAYS
    )
    ops_audit(
        "BACKUP",
        actor=actor,
        system_principal="backup_db",
        target_type="backup",
        target_id=record.pk,
        details={"tables": len(result.row_counts), "pruned": pruned},
    )
    return result


def restore_run(*, backup_path: Path, now: datetime, actor: Any = None) -> Any:
    """Restore over the live database under the maintenance lock, then audit it."""
    live_path, live_key = backups.live_database()
    key_hex = backups.backup_key()
    connections.close_all()
    with maintenance_lock(operation="restore_db"):
        result = backups.restore_from_backup(
            backup_path=backup_path,
            key_hex=key_hex,
            live_path=live_path,
            live_key=live_key,
        )
    connections.close_all()
    ops_audit(
        "RESTORE",
        actor=actor,
        system_principal="restore_db",
        target_type="backup",
        target_id=backup_path.name[:64],
        details={"tables": len(result.row_counts)},
    )
    return result


@dataclass(frozen=True)
class RotationOutcome:
    key_id: str
    seconds: float
    backup: str


def key_rotate(*, now: datetime, actor: Any = None) -> RotationOutcome:
    """Rotate the database key (§A.3) under the maintenance lock; record and audit.

    Raises RotationUnsupported when the key comes from the environment (the command
    cannot update it there), DatabaseInUse when other connections are open, and
    RotationFailed when the rekey did not verify (the old key still opens the file).
    """
    if os.environ.get(DATABASE_KEY.env, "").strip():
        raise RotationUnsupported(
            f"{DATABASE_KEY.env} is set in the environment; move the key to the key "
            "file (DATABASE_KEY_FILE) so that rotation can update it."
        )
    live_path, old_key = backups.live_database()
    backup_key = backups.backup_key()
    made: list[Path] = []

    def take_backup() -> None:
        result = backups.backup_create(
            now=now,
            backup_dir=Path(settings.BACKUP_DIR),
            source_path=live_path,
            source_key=old_key,
            key_hex=backup_key,
        )
        backups.backup_verify(path=result.path, key_hex=backup_key)
        made.append(result.path)

    connections.close_all()
    with maintenance_lock(operation="rotate_db_key"):
        result = keyrotation.rotate_key(
            db_path=live_path,
            old_key=old_key,
            key_file=key_file_path(DATABASE_KEY),
            backup=take_backup,
        )
    connections.close_all()
    KeyRecord.objects.filter(purpose="database", retired_at__isnull=True).update(
        retired_at=now
    )
    KeyRecord.objects.create(
        purpose="database",
        key_id=result.key_id,
        fingerprint=result.fingerprint,
        created_at=now,
    )
    ops_audit(
        "KEY_ROTATION",
        actor=actor,
        system_principal="rotate_db_key",
        target_type="database_key",
        target_id=result.key_id,
        details={"tables": len(result.row_counts)},
    )
    return RotationOutcome(
        key_id=result.key_id,
        seconds=result.seconds,
        backup=made[0].name if made else "",
    )


def key_record_current(*, now: datetime) -> KeyRecord:
    """The KeyRecord of the key in use, created on first sight (its age starts then)."""
    from stepsync.secrets import read_secret

    fingerprint = cipherfile.key_fingerprint(read_secret(DATABASE_KEY))
    record = KeyRecord.objects.filter(
        purpose="database", fingerprint=fingerprint
    ).first()
    if record is None:
        record = KeyRecord.objects.create(
            purpose="database",
            key_id="initial",
            fingerprint=fingerprint,
            created_at=_key_file_time(now),
        )
    return record


def _key_file_time(now: datetime) -> datetime:
    from datetime import UTC

    path = key_file_path(DATABASE_KEY)
    if os.environ.get(DATABASE_KEY.env, "").strip() or not path.exists():
        return now
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def integrity_check_run(*, now: datetime) -> IntegrityCheck:
    """quick_check + cipher_integrity_check on a separate connection; store the result."""
    if not uses_sqlcipher():
        return IntegrityCheck.objects.create(ok=True, quick_check="n/a", created_at=now)
    live_path, key = backups.live_database()
    try:
        conn = cipherfile.open_file(live_path, key, busy_ms=5000)
    except (OpsError, Exception) as exc:  # stored as data; health reads it
        return IntegrityCheck.objects.create(
            ok=False, quick_check=type(exc).__name__, created_at=now
        )
    try:
        result = cipherfile.integrity(conn)
    finally:
        conn.close()
    return IntegrityCheck.objects.create(
        ok=result.ok,
        quick_check=result.check,
        cipher_errors=len(result.cipher_errors),
        pages=result.cipher_errors[:20],
        created_at=now,
    )
