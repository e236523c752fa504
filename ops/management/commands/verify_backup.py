"""manage.py verify_backup PATH: check a backup without restoring it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops import backups
from ops.exceptions import OpsError


class Command(BaseCommand):
    help = (
        "Verify an encrypted backup: manifest sha256, header not plaintext, opens "
        "with BACKUP_ENCRYPTION_KEY, integrity checks, row counts. 'latest' = newest."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="backup file, or 'latest'")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            path = backups.backup_resolve(
                options["path"], backup_dir=Path(settings.BACKUP_DIR)
            )
            counts = backups.backup_verify(path=path, key_hex=backups.backup_key())
        except OpsError as exc:
            raise CommandError(f"verify_backup failed code={exc.code}: {exc}") from None
        rows = sum(counts.values())
        self.stdout.write(
            f"verify_backup ok file={path.name} tables={len(counts)} rows={rows}"
        )
