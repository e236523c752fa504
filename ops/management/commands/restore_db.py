"""manage.py restore_db PATH: restore an encrypted backup (the app must be stopped)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops import backups
from ops.exceptions import OpsError
from ops.management.commands._clock import add_now_option, moment
from ops.selectors import uses_sqlcipher
from ops.services import restore_run


class Command(BaseCommand):
    help = (
        "Restore a backup over the live database (RELIABILITY.md §A.4). Stop the web "
        "server and the job runner first: the command takes the maintenance lock and "
        "refuses while anything else has the database open. Removes the stale "
        "-wal/-shm, restores to a temporary file re-keyed to the live key, verifies "
        "it, then replaces the live file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="backup file, or 'latest'")
        parser.add_argument("--yes", action="store_true", help="do not ask")
        add_now_option(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if not uses_sqlcipher():
            raise CommandError(
                "restore_db restores the embedded SQLCipher database only."
            )
        try:
            path = backups.backup_resolve(
                options["path"], backup_dir=Path(settings.BACKUP_DIR)
            )
        except OpsError as exc:
            raise CommandError(f"restore_db failed code={exc.code}: {exc}") from None
        if not options["yes"]:
            answer = input("Replace the live database with this backup? [y/N] ")
            if answer.strip().lower() != "y":
                raise CommandError("restore_db cancelled")
        try:
            result = restore_run(backup_path=path, now=moment(options["now"]))
        except OpsError as exc:
            raise CommandError(f"restore_db failed code={exc.code}: {exc}") from None
        self.stdout.write(
            f"restore_db ok file={path.name} tables={len(result.row_counts)} "
            f"seconds={result.seconds:.2f} (start the app again)"
        )
