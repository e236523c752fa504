"""scan_logs_for_phi: file and line numbers and types, never the matched text."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ops.logscan import line_types, scan_files


def test_ssn_email_card_and_mrn_are_found() -> None:
    assert line_types("x 123-45-6789 y") == ("SSN",)
    assert line_types("to canary.patient@example.org") == ("EMAIL",)
    assert line_types("card 4111 1111 1111 1111") == ("CREDIT_CARD",)
    assert line_types("id MRN-CANARY-0001") == ("MRN",)


def test_normal_log_lines_are_clean() -> None:
    line = (
        '{"time": "2026-01-10T03:00:00+00:00", "level": "WARNING", "request_id": '
        '"9f2c4e1a5b6d7e8f9a0b1c2d3e4f5a6b", "message": "llm.reply conversation=12 '
        'ms=1234 redactions=2 from stepsync@localhost ip=127.0.0.1"}'
    )

    assert line_types(line) == ()


def test_scan_reports_file_and_line(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("clean\nclean\nssn 123-45-6789\n")

    report = scan_files([log])

    assert [(f.line, f.types) for f in report.findings] == [(3, ("SSN",))]


def test_command_prints_location_and_type_but_never_the_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "app.log"
    log.write_text("first\nsecond MRN-CANARY-0001\n")

    with pytest.raises(CommandError):
        call_command("scan_logs_for_phi", str(log))

    out = capsys.readouterr().out
    assert f"{log}:2: MRN" in out
    assert "CANARY" not in out


def test_command_exits_zero_on_clean_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "app.log"
    log.write_text("all fine\n")

    call_command("scan_logs_for_phi", str(log))

    assert "findings=0" in capsys.readouterr().out
