"""manage.py scan_logs_for_phi: report log lines holding PHI shapes (file:line, types)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops import logscan


class Command(BaseCommand):
    help = (
        "Scan LOG_FILES and LOG_DIR/*.log (or the given files) for PHI-shaped text. "
        "Prints file, line number and types only, never the matched text. Exit 1 "
        "when anything is found."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="*", help="files (default: configured)")

    def handle(self, *args: Any, **options: Any) -> None:
        paths = [Path(p) for p in options["files"]] or logscan.configured_log_files()
        report = logscan.scan_files(paths)
        for finding in report.findings:
            self.stdout.write(
                f"{finding.path}:{finding.line}: {','.join(finding.types)}"
            )
        for path in report.unreadable:
            self.stderr.write(f"unreadable: {path}")
        self.stdout.write(
            f"scan_logs_for_phi files={report.files} lines={report.lines} "
            f"findings={len(report.findings)}"
        )
        if report.findings:
            raise CommandError("PHI-shaped text found in logs")
