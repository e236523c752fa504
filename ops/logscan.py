"""Scan log files for PHI-shaped text; report file and line numbers, never the match.

High-precision patterns only (log lines are full of timestamps, ids and IPs that a
general detector would flag): SSNs, e-mail addresses, card numbers passing Luhn, MRNs
and US phone numbers. Used by ``scan_logs_for_phi`` and the ``phi_in_logs`` alert.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

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
