"""Logs: the PHI filter on every handler redacts identifiers a mistake let through."""

from __future__ import annotations

import io
import logging

import pytest
from django.conf import settings

from chat.logging_filter import DROPPED, PHIRedactingFilter, redact


@pytest.fixture
def isolated_logger() -> tuple[logging.Logger, io.StringIO]:
    """A non-propagating logger (so the raw record never reaches the tripwire)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PHIRedactingFilter())
    logger = logging.getLogger("tests.isolated.phi")
    logger.handlers = [handler]
    logger.propagate = False
    yield logger, stream
    logger.handlers = []


def test_every_configured_handler_carries_the_phi_filter() -> None:
    for name, handler in settings.LOGGING["handlers"].items():
        assert "phi" in handler.get("filters", []), name


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
