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


@pytest.mark.django_db
def test_incremental_scan_reads_only_what_was_appended(tmp_path: Path) -> None:
    from ops.logscan import scan_incremental
    from ops.models import LogScanOffset

    log = tmp_path / "app.log"
    log.write_text("clean\nclean\nclean\n")
    first = scan_incremental([log])
    with log.open("a") as handle:
        handle.write("ssn 123-45-6789\n")

    second = scan_incremental([log])

    assert (first.lines, first.findings) == (3, [])
    assert second.lines == 1
    assert [(f.line, f.types) for f in second.findings] == [(4, ("SSN",))]
    assert LogScanOffset.objects.get(path=str(log)).offset == log.stat().st_size


@pytest.mark.django_db
def test_incremental_scan_keeps_reporting_a_finding_until_the_file_is_rotated(
    tmp_path: Path,
) -> None:
    from ops.logscan import scan_incremental

    log = tmp_path / "app.log"
    log.write_text("mail canary.patient@example.org\n")
    scan_incremental([log])

    again = scan_incremental([log])
    log.rename(tmp_path / "app.log.1")
    log.write_text("clean\n")
    rotated = scan_incremental([log])

    assert [f.line for f in again.findings] == [1]
    assert again.lines == 0
    assert rotated.findings == []


@pytest.mark.django_db
def test_incremental_scan_waits_for_a_line_to_be_complete(tmp_path: Path) -> None:
    from ops.logscan import scan_incremental

    log = tmp_path / "app.log"
    log.write_text("clean\nssn 123-45")
    first = scan_incremental([log])
    with log.open("a") as handle:
        handle.write("-6789\n")

    second = scan_incremental([log])

    assert first.findings == []
    assert [f.line for f in second.findings] == [2]


def test_log_dir_handler_writes_a_private_file_the_scan_reads(
    tmp_path: Path,
) -> None:
    import logging
    import stat

    from ops.logscan import scan_files
    from stepsync.logging import LOG_FILE_NAME, LogDirFileHandler

    handler = LogDirFileHandler(str(tmp_path / "log"))
    handler.setFormatter(logging.Formatter("%(message)s"))
    record = logging.LogRecord(
        "ops.test", logging.INFO, __file__, 1, "ev=%d", (1,), None
    )
    handler.emit(record)
    handler.close()

    path = tmp_path / "log" / LOG_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "ev=1\n"
    assert scan_files([path]).files == 1


def test_log_dir_handler_config_carries_the_phi_filter() -> None:
    from stepsync.logging import file_handler_config

    config = file_handler_config("var/log", "json")

    assert config["()"] == "stepsync.logging.LogDirFileHandler"
    assert "phi" in config["filters"]
    assert config["formatter"] == "json"
