"""Logs: the PHI filter on every handler redacts identifiers a mistake let through."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from chat.logging_filter import DROPPED, PHIRedactingFilter, redact
from tests.phi_tripwire import PROBE_LOGGER

ROOT = Path(__file__).resolve().parents[2]
SSN = "123-45-6789"


@pytest.fixture
def isolated_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A non-propagating probe logger (the tripwire skips its raw records)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PHIRedactingFilter())
    logger = logging.getLogger(f"{PROBE_LOGGER}.logging")
    logger.handlers = [handler]
    logger.propagate = False
    yield logger, stream
    logger.handlers = []


def run_runtime(mode: str, **env_overrides: str) -> subprocess.CompletedProcess[str]:
    """tests/stepsync/runtime_logging.py in a fresh interpreter with production
    settings (the test run's LOG_LEVEL/LOG_FORMAT/DEBUG removed)."""
    dropped = ("LOG_LEVEL", "LOG_FORMAT", "DEBUG", "SENTRY_DSN", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(DJANGO_SETTINGS_MODULE="stepsync.settings", **env_overrides)
    return subprocess.run(
        [sys.executable, "-m", "tests.stepsync.runtime_logging", mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_configured_handler_carries_the_phi_filter() -> None:
    for name, handler in settings.LOGGING["handlers"].items():
        assert "phi" in handler.get("filters", []), name


def test_djangos_own_loggers_are_configured_so_their_default_handlers_go() -> None:
    for name in ("django", "django.server"):
        assert settings.LOGGING["loggers"][name]["handlers"] == []
        assert settings.LOGGING["loggers"][name]["propagate"] is True


def test_every_handler_attached_at_runtime_carries_the_phi_filter() -> None:
    result = run_runtime("handlers", SENTRY_DSN="https://public@127.0.0.1/1")

    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.splitlines()[-1])
    # A NullHandler emits nothing (urllib3 attaches one by convention).
    unfiltered = [h for h in report["unfiltered"] if not h.endswith(": NullHandler")]
    assert unfiltered == []
    assert "root: StreamHandler" in report["handlers"]
    assert "lastResort: _StderrHandler" in report["handlers"]


def test_a_server_error_logged_by_django_with_debug_on_is_redacted_everywhere() -> None:
    result = run_runtime("django-request", DEBUG="true", LOG_FORMAT="text")

    assert result.returncode == 0
    assert "status 500" in result.stdout
    assert SSN not in result.stdout + result.stderr
    assert "[SSN]" in result.stderr
    assert result.stderr.count("Internal Server Error: /api/conversations/") == 1


def test_production_logging_is_warning_level_json_lines_with_a_request_id() -> None:
    result = run_runtime("event")

    assert result.returncode == 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["level"] == "WARNING"
    assert record["request_id"] == "req-test-42"
    assert record["message"] == "llm.fail conversation=7 code=bad_response"
    assert record["exc_type"] == "ValueError"
    assert set(record) == {
        "time",
        "level",
        "logger",
        "request_id",
        "message",
        "exc_type",
        "traceback",
    }
    assert SSN not in result.stderr


def test_production_loggers_default_to_warning() -> None:
    result = run_runtime("event")

    levels = json.loads(result.stdout.splitlines()[-1])
    assert set(levels.values()) == {"WARNING"}


def test_log_arguments_holding_an_ssn_are_redacted(isolated_logger) -> None:  # type: ignore[no-untyped-def]
    logger, stream = isolated_logger
    logger.warning("user wrote %s", "my ssn is 123-45-6789")
    assert "123-45-6789" not in stream.getvalue()
    assert "[SSN]" in stream.getvalue()


def test_exception_text_in_a_log_record_is_redacted(isolated_logger) -> None:  # type: ignore[no-untyped-def]
    logger, stream = isolated_logger
    try:
        raise ValueError("mail canary.patient@example.org")
    except ValueError:
        logger.exception("failed")
    assert "canary.patient@example.org" not in stream.getvalue()


def test_exception_text_cached_by_an_earlier_handler_is_still_redacted(
    isolated_logger,  # type: ignore[no-untyped-def]
) -> None:
    logger, filtered = isolated_logger
    unfiltered = io.StringIO()
    logger.handlers.insert(0, logging.StreamHandler(unfiltered))
    try:
        raise ValueError(f"could not store ssn {SSN}")
    except ValueError:
        logger.exception("failed")
    assert SSN in unfiltered.getvalue()
    assert SSN not in filtered.getvalue()
    assert "[SSN]" in filtered.getvalue()


def test_the_stack_of_a_log_record_is_redacted(isolated_logger) -> None:  # type: ignore[no-untyped-def]
    logger, stream = isolated_logger
    record = logger.makeRecord(logger.name, logging.WARNING, "f", 1, "event", (), None)
    record.stack_info = f"Stack (most recent call last):\n  ssn {SSN}"
    logger.handle(record)
    assert SSN not in stream.getvalue()


def test_redaction_failure_drops_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    import chat.logging_filter as module

    def broken(text: str, **kw: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(module, "sanitize", broken)
    assert redact("my ssn is 123-45-6789") == DROPPED


def test_blocked_sanitizer_result_drops_the_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import chat.logging_filter as module
    from chat.sanitizer import SanitizeResult

    monkeypatch.setattr(
        module,
        "sanitize",
        lambda text: SanitizeResult("x", (), {}, True, ("SANITIZER_ERROR",)),
    )
    assert redact("anything at all") == DROPPED


def test_step_counts_and_app_names_survive_redaction() -> None:
    text = "Fitbit Charge 6 shows 12,345 steps but Health Connect shows 9,870"
    assert redact(text) == text
