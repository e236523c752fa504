"""manage.py evaluate_alerts: run the alert rules once (the job runner does it each minute)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.alerts import alerts_evaluate
from ops.management.commands._clock import add_now_option, moment


class Command(BaseCommand):
    help = "Evaluate ops/alert_rules.toml: open, refresh or resolve alerts and notify."

    def add_arguments(self, parser: CommandParser) -> None:
        add_now_option(parser)
        parser.add_argument("--rule", action="append", default=[], help="only these")

    def handle(self, *args: Any, **options: Any) -> None:
        only = set(options["rule"]) or None
        result = alerts_evaluate(now=moment(options["now"]), only=only)
        self.stdout.write(
            f"evaluate_alerts fired={','.join(result.fired) or '-'} "
            f"resolved={','.join(result.resolved) or '-'} "
            f"open={','.join(result.still_open) or '-'} "
            f"no_data={','.join(result.no_data) or '-'} "
            f"failed={','.join(result.failed) or '-'}"
        )
        if result.failed:
            raise CommandError("evaluate_alerts: some rules failed (see the log)")
