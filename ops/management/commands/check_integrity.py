"""manage.py check_integrity: quick_check + cipher_integrity_check; stores the result."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.management.commands._clock import add_now_option, moment
from ops.services import integrity_check_run


class Command(BaseCommand):
    help = "Check database integrity (read by /health/); run nightly by runjobs."

    def add_arguments(self, parser: CommandParser) -> None:
        add_now_option(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        check = integrity_check_run(now=moment(options["now"]))
        pages = ",".join(str(page) for page in check.pages) or "-"
        self.stdout.write(
            f"check_integrity ok={check.ok} quick_check={check.quick_check} "
            f"cipher_errors={check.cipher_errors} pages={pages}"
        )
        if not check.ok:
            raise CommandError("integrity check failed")
