"""Sentry with the project's options leaks no PHI (capturing transport, no network)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.transport import Transport

from stepsync import sentry as project_sentry
from tests.phi_tripwire import PROBE_LOGGER, find_canary, record_text

SSN = "123-45-6789"
EMAIL = "canary.patient@example.org"


class CapturingTransport(Transport):
    """Keeps envelopes (and the events in them) in memory instead of sending them."""

    envelopes: list[str] = []
    events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Any) -> None:
        body = envelope.serialize().decode("utf-8", "replace")
        CapturingTransport.envelopes.append(body)
        for item in envelope.items:
            event = item.get_event()
            if event is not None:
                CapturingTransport.events.append(event)


@pytest.fixture
def captured() -> Iterator[list[str]]:
    CapturingTransport.envelopes = []
    CapturingTransport.events = []
    sentry_sdk.init(
        **project_sentry.sentry_options(
            "https://public@127.0.0.1/1", transport=CapturingTransport
        )
    )
    yield CapturingTransport.envelopes
    sentry_sdk.get_client().close()
    sentry_sdk.init(dsn=None)
    for body in CapturingTransport.envelopes:
        record_text("sentry envelope", body)


def quiet_logger() -> logging.Logger:
    # A probe logger: the tripwire does not scan its raw records, and it does not
    # propagate, so they never reach the root handlers either.
    logger = logging.getLogger(f"{PROBE_LOGGER}.sentry")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())  # and not logging's lastResort
    return logger


def raise_with_phi_in_locals_and_message() -> None:
    patient_ssn = SSN  # noqa: F841 - a frame local Sentry must not capture
    raise ValueError(f"could not process {SSN} for {EMAIL}")


def capture(envelopes: list[str]) -> str:
    quiet_logger().warning("breadcrumb with %s", EMAIL)
    try:
        raise_with_phi_in_locals_and_message()
    except ValueError as exc:
        sentry_sdk.capture_exception(exc)
    quiet_logger().error("error log with %s", SSN)
    sentry_sdk.flush()
    return "\n".join(envelopes)


def test_events_are_sent_at_all(captured: list[str]) -> None:
    text = capture(captured)
    assert "ValueError" in text


def test_no_canary_reaches_any_envelope(captured: list[str]) -> None:
    text = capture(captured)
    assert find_canary(text) is False


def test_frame_locals_are_not_captured(captured: list[str]) -> None:
    text = capture(captured)
    assert "patient_ssn" not in text


def test_events_the_transport_receives_carry_no_breadcrumb_text(
    captured: list[str],
) -> None:
    capture(captured)
    events = CapturingTransport.events
    crumbs = [
        crumb
        for event in events
        for crumb in (event.get("breadcrumbs") or {}).get("values", [])
    ]
    assert len(events) >= 2
    assert [c for c in crumbs if "message" in c or "data" in c] == []
    assert not any("breadcrumb with" in body for body in captured)


def test_breadcrumbs_keep_only_category_level_time_and_type() -> None:
    crumb = {
        "category": "chat.services",
        "level": "warning",
        "timestamp": 1.0,
        "type": "log",
        "message": f"user wrote {EMAIL}",
        "data": {"text": SSN},
    }
    assert project_sentry.before_breadcrumb(crumb, {}) == {
        "category": "chat.services",
        "level": "warning",
        "timestamp": 1.0,
        "type": "log",
    }


def test_scrubber_fails_closed_when_the_redactor_breaks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> Any:
        raise RuntimeError("no redactor")

    monkeypatch.setattr(project_sentry, "_redactor", broken)
    assert project_sentry.scrub_text(f"ssn {SSN}") == project_sentry.REDACTED


def test_request_data_is_dropped_from_events() -> None:
    event = {
        "request": {"data": {"text": SSN}},
        "extra": {"x": EMAIL},
        "user": {"id": 7, "email": EMAIL},
    }
    cleaned = project_sentry.before_send(event, {})
    assert "request" not in cleaned
    assert "extra" not in cleaned
    assert cleaned["user"] == {"id": 7}


def test_client_does_not_send_default_pii(captured: list[str]) -> None:
    assert not sentry_sdk.get_client().options.get("send_default_pii")
