"""manage.py runjobs: the periodic-job scheduler (one active runner via a DB lease)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops import jobs


class Command(BaseCommand):
    help = (
        "Run the periodic jobs (evaluate_alerts and metric samples every minute, "
        "cleanup_sessions every CLEANUP_INTERVAL_MINUTES, purge_expired, backup_db, "
        "check_integrity, verify_audit_chain, audit_head_export daily). Only the "
        "lease holder runs; others wait. Stops cleanly on SIGTERM/SIGINT."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass, then exit")
        parser.add_argument("--jobs", default="", help="comma-separated subset")
        parser.add_argument("--tick", type=float, default=15.0, help="seconds")

    def handle(self, *args: Any, **options: Any) -> None:
        selected = jobs.JOBS
        if options["jobs"]:
            names = {n.strip() for n in options["jobs"].split(",") if n.strip()}
            unknown = names - {job.name for job in jobs.JOBS}
            if unknown:
                raise CommandError(f"unknown jobs: {','.join(sorted(unknown))}")
            selected = tuple(job for job in jobs.JOBS if job.name in names)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        holder = jobs.runner_id()

        last = [""]

        def report(state: str, runs: list[Any]) -> None:
            if state == last[0] and not runs:
                return
            last[0] = state
            done = ",".join(f"{r.job}:{r.outcome}" for r in runs) or "-"
            self.stdout.write(f"runjobs state={state} ran={done}")
            self.stdout.flush()

        jobs.run_forever(
            stop=stop,
            holder=holder,
            jobs=selected,
            once=options["once"],
            tick_seconds=options["tick"],
            on_tick=report,
        )
        self.stdout.write("runjobs stopped")
