"""Ops use cases: backups, restore, key rotation and the integrity check, with records.

Each function takes ``now`` (tests move it), records its outcome (BackupRecord,
KeyRecord, IntegrityCheck) and writes an audit event. Audit target ids are the
records' primary keys, details are counts and codes: file names and key ids hold
timestamps, which the audit guard rightly refuses as identifier-shaped.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections
from sqlcipher3 import dbapi2 as Database

from ops import backups, cipherfile, keyrotation
from ops.audit import ops_audit
from ops.exceptions import OpsError, RotationUnsupported
from ops.maintenance import maintenance_lock
from ops.models import BackupRecord, IntegrityCheck, KeyRecord
from ops.selectors import key_record_in_use, uses_sqlcipher
from stepsync.db.sqlcipher.errors import DatabaseKeyError
from stepsync.secrets import DATABASE_KEY, key_file_path

logger = logging.getLogger(__name__)


def _backup_record(result: backups.BackupResult) -> BackupRecord:
    return BackupRecord.objects.create(
        path=str(result.path),
        sha256=result.sha256,
        size_bytes=result.size_bytes,
        key_id=result.key_id,
        row_counts=result.row_counts,
        verified=True,
        created_at=result.created_at,
    )


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
    record = _backup_record(result)
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


def restore_run(
    *, backup_path: Path, now: datetime, actor: Any = None
) -> backups.RestoreResult:
    """Restore over the live database under the maintenance lock, then audit it.

    The restored database does not know the backup it came from (the backup was
    taken before its record was written), so the record is added from the manifest.
    """
    live_path, live_key = backups.live_database()
    key_hex = backups.backup_key()
    manifest = backups.manifest_read(backup_path)
    connections.close_all()
    with maintenance_lock(operation="restore_db"):
        result = backups.restore_from_backup(
            backup_path=backup_path,
            key_hex=key_hex,
            live_path=live_path,
            live_key=live_key,
        )
    connections.close_all()
    record = BackupRecord.objects.filter(sha256=manifest.get("sha256", "")).first()
    if record is None:
        record = BackupRecord.objects.create(
            path=str(backup_path),
            sha256=str(manifest.get("sha256", ""))[:64],
            size_bytes=backup_path.stat().st_size,
            key_id=str(manifest.get("key_id", ""))[:32],
            row_counts=result.row_counts,
            verified=True,
            created_at=datetime.fromisoformat(manifest["created_at"])
            if manifest.get("created_at")
            else now,
        )
    ops_audit(
        "RESTORE",
        actor=actor,
        system_principal="restore_db",
        target_type="backup",
        target_id=record.pk,
        details={"tables": len(result.row_counts)},
    )
    return result


def _record_backups_if_possible(made: list[backups.BackupResult]) -> None:
    """After a failed rotation the backup still exists; record it unless the
    database itself cannot be opened (then the failure is what the operator sees)."""
    try:
        for backup in made:
            _backup_record(backup)
    except (DatabaseError, ImproperlyConfigured) as exc:
        logger.warning("ops.rotation.backup_unrecorded error=%s", type(exc).__name__)


@dataclass(frozen=True)
class RotationOutcome:
    key_id: str
    seconds: float
    backup: str


def _key_file_for_rotation() -> Path:
    if os.environ.get(DATABASE_KEY.env, "").strip():
        raise RotationUnsupported(
            f"{DATABASE_KEY.env} is set in the environment; move the key to the key "
            "file (DATABASE_KEY_FILE) so that rotation can update it."
        )
    return key_file_path(DATABASE_KEY)


def key_rotate(
    *, now: datetime, actor: Any = None, progress: keyrotation.Progress | None = None
) -> RotationOutcome:
    """Rotate the database key (§A.3) under the maintenance lock; record and audit.

    Raises RotationUnsupported when the key comes from the environment (the command
    cannot update it there), PendingKeyFound after an interrupted rotation,
    DatabaseInUse when other connections are open, and RotationFailed when the
    rekey did not verify (the old key still opens the file). The verified backup
    taken first is recorded as a BackupRecord whatever happens next.
    """
    key_file = _key_file_for_rotation()
    live_path, old_key = backups.live_database()
    # Before any query: after a crash the key file may no longer open the database.
    keyrotation.refuse_if_pending(db_path=live_path, key_file=key_file, key=old_key)
    backup_key = backups.backup_key()
    previous = key_record_in_use()
    made: list[backups.BackupResult] = []

    def take_backup() -> None:
        result = backups.backup_create(
            now=now,
            backup_dir=Path(settings.BACKUP_DIR),
            source_path=live_path,
            source_key=old_key,
            key_hex=backup_key,
        )
        backups.backup_verify(path=result.path, key_hex=backup_key)
        made.append(result)

    connections.close_all()
    try:
        with maintenance_lock(operation="rotate_db_key"):
            result = keyrotation.rotate_key(
                db_path=live_path,
                old_key=old_key,
                key_file=key_file,
                key_id=f"k{now:%Y%m%d%H%M%S}",
                old_key_id=previous.key_id if previous is not None else "initial",
                backup=take_backup,
                progress=progress,
            )
    except OpsError:
        connections.close_all()
        _record_backups_if_possible(made)
        raise
    connections.close_all()
    for backup in made:
        _backup_record(backup)
    KeyRecord.objects.filter(purpose="database", retired_at__isnull=True).update(
        retired_at=now
    )
    record = KeyRecord.objects.create(
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
        target_id=record.pk,
        details={"tables": len(result.row_counts), "backups": len(made)},
    )
    return RotationOutcome(
        key_id=result.key_id,
        seconds=result.seconds,
        backup=made[0].path.name if made else "",
    )


def pending_key_finish(*, now: datetime) -> str:
    """Finish (or clear) an interrupted rotation's pending key; returns its state.

    Works while the key file no longer opens the database: nothing is queried
    before the pending key is installed.
    """
    key_file = _key_file_for_rotation()
    live_path, current_key = backups.live_database()
    connections.close_all()
    state = keyrotation.finish_pending(
        db_path=live_path,
        key_file=key_file,
        current_key=current_key,
        current_key_id="previous",
    )
    connections.close_all()
    if state == "pending":
        KeyRecord.objects.filter(purpose="database", retired_at__isnull=True).update(
            retired_at=now
        )
        KeyRecord.objects.create(
            purpose="database",
            key_id=f"k{now:%Y%m%d%H%M%S}",
            fingerprint=cipherfile.key_fingerprint(backups.live_database()[1]),
            created_at=now,
        )
    return state


def integrity_check_run(
    *,
    now: datetime,
    db_path: Path | None = None,
    key_hex: str | None = None,
) -> IntegrityCheck:
    """quick_check + cipher_integrity_check on a separate connection; store the result
    with the failing page numbers (the ``integrity_failed`` alert reads it).

    ``db_path``/``key_hex`` default to the live database; a failure to open the file
    is stored as a failed check, never raised.
    """
    if not uses_sqlcipher() and db_path is None:
        return IntegrityCheck.objects.create(ok=True, quick_check="n/a", created_at=now)
    if db_path is None or key_hex is None:
        db_path, key_hex = backups.live_database()
    try:
        conn = cipherfile.open_file(db_path, key_hex, busy_ms=5000)
    except (DatabaseKeyError, Database.Error) as exc:
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
        pages=result.pages[:20],
        created_at=now,
    )
