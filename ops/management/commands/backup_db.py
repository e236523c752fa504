"""manage.py backup_db: write a verified, encrypted backup with a manifest; prune old."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.exceptions import OpsError
from ops.management.commands._clock import add_now_option, moment
from ops.selectors import uses_sqlcipher
from ops.services import backup_run


class Command(BaseCommand):
    help = (
        "Back up the SQLCipher database to BACKUP_DIR, encrypted with "
        "BACKUP_ENCRYPTION_KEY; verify it, write a manifest, prune by "
        "BACKUP_RETENTION_DAYS. Safe while the app runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_now_option(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if not uses_sqlcipher():
            raise CommandError(
                "backup_db backs up the embedded SQLCipher database; on PostgreSQL use "
                "the database service's encrypted backups (pg_dump / snapshots)."
            )
        try:
            result = backup_run(now=moment(options["now"]))
        except OpsError as exc:
            raise CommandError(f"backup_db failed code={exc.code}: {exc}") from None
        self.stdout.write(
            f"backup_db ok file={result.path.name} bytes={result.size_bytes} "
            f"tables={len(result.row_counts)} sha256={result.sha256[:16]} "
            f"key_id={result.key_id}"
        )
