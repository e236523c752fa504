"""Errors of the ops app; each message is a fixed, PHI-free sentence."""

from __future__ import annotations


class OpsError(Exception):
    """Base class; ``code`` is a stable identifier for logs, job runs and audit rows."""

    code = "ops_error"
    message = "The operation failed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)


class MaintenanceBusy(OpsError):
    """Another maintenance operation holds the lock file."""

    code = "maintenance_busy"
    message = "Another maintenance operation is running (maintenance lock file exists)."


class MaintenanceRequired(OpsError):
    """A maintenance step ran without this process holding the maintenance lock."""

    code = "maintenance_required"
    message = (
        "This step needs the maintenance lock file (MAINTENANCE_LOCK_FILE) held by "
        "this process; run it through its management command."
    )


class DatabaseInUse(OpsError):
    """Other connections hold the database open, so exclusive access was refused."""

    code = "database_in_use"
    message = (
        "Other connections have the database open; stop the app and the job runner "
        "(or wait for them to finish) and try again."
    )


class BackupKeyMissing(OpsError):
    """The backup key is empty or malformed; an empty key would write plaintext."""

    code = "backup_key_missing"
    message = (
        "BACKUP_ENCRYPTION_KEY (or its key file) is missing or not 64 hex characters; "
        "refusing to write a backup."
    )


class BackupInvalid(OpsError):
    """A backup failed a check (header, integrity, checksum or row counts)."""

    code = "backup_invalid"
    message = "The backup failed verification."


class RotationFailed(OpsError):
    """Key rotation did not complete; the database still opens with the old key."""

    code = "rotation_failed"
    message = "Key rotation failed; the database still opens with the old key."


class RotationUnsupported(OpsError):
    """Rotation cannot update where the key comes from (e.g. an environment variable)."""

    code = "rotation_unsupported"
    message = "Key rotation is not possible with this configuration."


class RestoreFailed(OpsError):
    """A restore did not complete; the live database was not replaced."""

    code = "restore_failed"
    message = "Restore failed; the live database was not replaced."


class BackupNotFound(OpsError):
    """The named backup file (or any backup, for 'latest') does not exist."""

    code = "backup_not_found"
    message = "Backup file not found (or no backups in BACKUP_DIR)."


class PendingKeyFound(OpsError):
    """A pending key file from an interrupted rotation exists; the message says which
    key file opens the database (never a key)."""

    code = "pending_key_found"
    message = "A pending database key file exists from an interrupted rotation."
