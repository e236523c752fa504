"""The tripwire itself: a run that leaks a canary fails, even when its tests pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.phi_tripwire import find_canary

pytest_plugins = ["pytester"]

LEAKING_LOG = """
import logging

def test_logs_a_canary():
    logging.getLogger("leaky").warning("user said %s", "123-45-6789")
"""

LEAKING_PRINT = """
def test_prints_a_canary():
    print("contact canary.patient@example.org")
"""

# Like production: the PHI filter sits on the first root handler and rewrites the
# record in place, so every later handler (and captured output) sees it redacted.
FILTERED_SETUP = """
import io
import logging

from chat.logging_filter import PHIRedactingFilter


def log_through_the_phi_filter(logger_name, *args):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PHIRedactingFilter())
    root = logging.getLogger()
    root.handlers.insert(0, handler)
    try:
        logging.getLogger(logger_name).warning(*args)
    finally:
        root.removeHandler(handler)
    return stream.getvalue()
"""

LEAKING_SERVICES_LOG = (
    FILTERED_SETUP
    + """

def test_services_log_a_raw_canary_that_the_console_redacts():
    printed = log_through_the_phi_filter("chat.services", "user said %s", "123-45-6789")
    assert "123-45-6789" not in printed
    assert "[SSN]" in printed
"""
)

PROBE_LOG = (
    FILTERED_SETUP
    + """

def test_a_probe_proves_the_filter_redacts():
    printed = log_through_the_phi_filter(
        "tests.phi_probe.filter", "user said %s", "123-45-6789"
    )
    assert "[SSN]" in printed
"""
)

PROBE_UNFILTERED = """
import logging

def test_a_probe_whose_canary_reaches_the_root_unfiltered():
    logging.getLogger("tests.phi_probe.leak").warning("user said %s", "123-45-6789")
"""

CLEAN = """
import logging

def test_logs_only_ids():
    logging.getLogger("clean").warning("message stored conversation=%s", 7)
"""


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _inner_sessions_import_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def run_inner(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makepyfile(test_inner=source)
    return pytester.runpytest_subprocess(
        "-p",
        "tests.phi_tripwire",
        "-p",
        "no:django",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "-o",
        "DJANGO_SETTINGS_MODULE=",
    )


def test_a_log_line_with_a_canary_fails_the_session(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, LEAKING_LOG)
    result.assert_outcomes(passed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*canary PHI seen in*test_logs_a_canary*"])


def test_printed_output_with_a_canary_fails_the_session(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(pytester, LEAKING_PRINT)
    result.assert_outcomes(passed=1)
    assert result.ret == 1


def test_a_raw_canary_logged_by_chat_services_fails_the_session_even_when_redacted(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(pytester, LEAKING_SERVICES_LOG)
    result.assert_outcomes(passed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*canary PHI seen in*log record chat.services*"])


def test_a_probe_logger_may_log_a_canary_that_the_filter_redacts(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(pytester, PROBE_LOG)
    result.assert_outcomes(passed=1)
    assert result.ret == 0


def test_a_probe_canary_that_reaches_output_unredacted_fails_the_session(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(pytester, PROBE_UNFILTERED)
    result.assert_outcomes(passed=1)
    assert result.ret == 1


def test_a_clean_session_passes(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, CLEAN)
    assert result.ret == 0


def test_the_hit_report_names_the_place_not_the_value(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(pytester, LEAKING_LOG)
    assert "123-45-6789" not in result.stdout.str()


@pytest.mark.parametrize(
    "text",
    [
        "SSN 123-45-6789",
        "mail canary.patient@example.org",
        "MRN-CANARY-0001",
        "born 1950-01-31",
        "Zebulon Canarywood",
    ],
)
def test_every_canary_is_recognised(text: str) -> None:
    assert find_canary(text) is True
