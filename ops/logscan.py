"""Scan log files for PHI-shaped text; report file and line numbers, never the match.

High-precision patterns only (log lines are full of timestamps, ids and IPs that a
general detector would flag): SSNs, e-mail addresses, card numbers passing Luhn, MRNs
and US phone numbers. ``scan_files`` reads whole files (``scan_logs_for_phi``);
``scan_incremental`` (the ``phi_in_logs`` alert, every minute) reads only what was
appended since its last run, remembered per file and inode in LogScanOffset, and
keeps reporting a file's findings until the file is rotated or truncated.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from ops.models import LogScanOffset

# Read at most this much of a file per run, so a huge new file cannot stall the
# evaluator; the next run continues where this one stopped.
MAX_BYTES_PER_RUN = 64 * 1024 * 1024

PATTERNS: dict[str, re.Pattern[str]] = {
    "SSN": re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"),
    "EMAIL": re.compile(
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
    ),
    "CREDIT_CARD": re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)"),
    "MRN": re.compile(r"\bMRN[-: #]*[A-Z0-9][A-Z0-9-]{3,}", re.IGNORECASE),
    "PHONE": re.compile(r"(?<!\d)\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\d)"),
}
# Our own sender and system addresses are expected in logs.
ALLOWED_EMAIL_DOMAINS = ("@localhost",)


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    types: tuple[str, ...]


@dataclass
class ScanReport:
    files: int = 0
    lines: int = 0
    findings: list[Finding] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def line_types(line: str) -> tuple[str, ...]:
    """The PHI types found in one line (types only)."""
    found = []
    for kind, pattern in PATTERNS.items():
        for match in pattern.finditer(line):
            text = match.group(0)
            if kind == "CREDIT_CARD":
                digits = re.sub(r"\D", "", text)
                if not (13 <= len(digits) <= 19 and _luhn(digits)):
                    continue
            if kind == "EMAIL" and text.lower().endswith(ALLOWED_EMAIL_DOMAINS):
                continue
            found.append(kind)
            break
    return tuple(found)


def configured_log_files() -> list[Path]:
    paths = [Path(p) for p in settings.LOG_FILES]
    if settings.LOG_DIR:
        folder = Path(settings.LOG_DIR)
        if folder.is_dir():
            paths.extend(sorted(folder.glob("*.log")))
    return paths


def readable_files(paths: Iterable[Path]) -> list[Path]:
    """The given paths that are regular files this process can read."""
    return [path for path in paths if path.is_file() and os.access(path, os.R_OK)]


def scan_files(paths: Iterable[Path]) -> ScanReport:
    report = ScanReport()
    for path in paths:
        try:
            handle = path.open("r", encoding="utf-8", errors="replace")
        except OSError:
            report.unreadable.append(str(path))
            continue
        report.files += 1
        with handle:
            for number, line in enumerate(handle, start=1):
                report.lines += 1
                types = line_types(line)
                if types:
                    report.findings.append(Finding(str(path), number, types))
    return report


def _scan_new_bytes(path: Path, state: LogScanOffset, report: ScanReport) -> None:
    """Read complete lines appended after ``state.offset``; update ``state``."""
    with path.open("rb") as handle:
        handle.seek(state.offset)
        data = handle.read(MAX_BYTES_PER_RUN)
    end = data.rfind(b"\n") + 1  # a line still being written waits for next time
    number = state.lines
    for raw in data[:end].splitlines():
        number += 1
        report.lines += 1
        types = line_types(raw.decode("utf-8", errors="replace"))
        if types:
            if state.first_finding_line is None:
                state.first_finding_line = number
            state.findings += 1
            report.findings.append(Finding(str(path), number, types))
    state.offset += end
    state.lines = number


def scan_incremental(paths: Iterable[Path]) -> ScanReport:
    """Scan what each file gained since the last run; report its open findings.

    A file whose inode changed (rotated) or that shrank (truncated) is read again
    from the start and its earlier findings are forgotten. ``report.findings`` holds
    the new findings plus one entry (first line) per file with older ones.
    """
    report = ScanReport()
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            report.unreadable.append(str(path))
            continue
        state, _ = LogScanOffset.objects.get_or_create(path=str(path)[:500])
        if state.inode != stat.st_ino or stat.st_size < state.offset:
            state.inode, state.offset, state.lines = stat.st_ino, 0, 0
            state.findings, state.first_finding_line = 0, None
        known = state.findings
        try:
            _scan_new_bytes(path, state, report)
        except OSError:
            report.unreadable.append(str(path))
            continue
        report.files += 1
        if known and state.first_finding_line is not None:
            report.findings.append(Finding(str(path), state.first_finding_line, ()))
        state.save()
    return report
