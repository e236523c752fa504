"""manage.py rotate_db_key: rotate the database key (RELIABILITY.md §A.3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.exceptions import OpsError
from ops.management.commands._clock import add_now_option, moment
from ops.selectors import uses_sqlcipher
from ops.services import key_rotate, pending_key_finish

POSTGRES_NOTE = (
    "PostgreSQL: at-rest encryption is the database service's (rotate it there). "
    "This command rotates the application field keys instead: it adds a new key "
    "to FIELD_ENCRYPTION_KEYS and re-encrypts message text (reencrypt_fields)."
)


class Command(BaseCommand):
    help = (
        "Rotate the SQLCipher key: stop the web server and the job runner first "
        "(refused while other connections are open); takes a verified backup, "
        "rekeys, checks old key refused / new key accepted / integrity / row counts, "
        "then installs the new key file (0600; the old key goes to <key file>.history). "
        "--finish completes a rotation that stopped after its rekey (a "
        "<key file>.pending exists). On PostgreSQL rotates field keys."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_now_option(parser)
        parser.add_argument(
            "--finish",
            action="store_true",
            help="install (or drop) the pending key left by an interrupted rotation",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = moment(options["now"])
        if not uses_sqlcipher():
            self._rotate_field_keys(now)
            return
        if options["finish"]:
            try:
                state = pending_key_finish(now=now)
            except OpsError as exc:
                raise CommandError(
                    f"rotate_db_key --finish failed code={exc.code}: {exc}"
                ) from None
            self.stdout.write(f"rotate_db_key --finish ok pending={state}")
            return
        try:
            outcome = key_rotate(now=now, progress=self._progress)
        except OpsError as exc:
            raise CommandError(f"rotate_db_key failed code={exc.code}: {exc}") from None
        self.stdout.write(
            f"rotate_db_key ok key_id={outcome.key_id} seconds={outcome.seconds:.2f} "
            f"backup={outcome.backup} (restart the app: it reads the new key file)"
        )

    def _rotate_field_keys(self, now: datetime) -> None:
        from ops.fieldkeys import field_key_rotate

        self.stdout.write(POSTGRES_NOTE)
        try:
            rotation = field_key_rotate(now=now)
        except OpsError as exc:
            raise CommandError(f"rotate_db_key failed code={exc.code}: {exc}") from None
        self.stdout.write(
            f"rotate_db_key ok field_key_id={rotation.key_id} "
            f"reencrypted={rotation.reencrypted}"
        )

    def _progress(self, step: str) -> None:
        self.stdout.write(f"rotate_db_key step={step}")
        self.stdout.flush()
