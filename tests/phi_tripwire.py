"""The PHI tripwire (RELIABILITY.md §2.3): canary values anywhere in output fail the run.

Loaded for every test session (pytest.ini ``-p tests.phi_tripwire``). It watches:
every log record as it is created, before any filter can rewrite it (a LogRecord
factory: the PHI filter on our handlers redacts records in place, so a handler
would only see what the filter left and miss the code that logged PHI); the
formatted records that reach the root logger; each test's captured
stdout/stderr/log sections; 4xx/5xx HTTP bodies (``ErrorBodyTripwireMiddleware`` in
the test settings); and anything handed to ``record_text`` (Sentry envelopes,
exception strings). A hit records only where it happened, never the text, and the
session exits 1.

Tests that log canaries on purpose, to prove the filter works, log under the
``tests.phi_probe`` logger (PROBE_LOGGER): their raw records are not scanned, but
whatever of them reaches the root logger or captured output still is.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import pytest

CANARIES = (
    "123-45-6789",
    "canary.patient@example.org",
    "MRN-CANARY-0001",
    "1950-01-31",
    "Zebulon Canarywood",
    "4111 1111 1111 1111",
)
# Second tier: shapes that should never be printed even when not a known canary.
PATTERNS = (
    re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    re.compile(r"canary\.[a-z]+@", re.IGNORECASE),
    re.compile(r"MRN-CANARY", re.IGNORECASE),
)

PROBE_LOGGER = "tests.phi_probe"

_hits: list[str] = []
_pending: list[str] = []
_lock = threading.Lock()


def find_canary(text: str) -> bool:
    """True when ``text`` holds a canary value or a second-tier PHI shape."""
    if any(canary in text for canary in CANARIES):
        return True
    return any(pattern.search(text) for pattern in PATTERNS)


def record_text(where: str, text: str) -> bool:
    """Check ``text`` seen at ``where``; remember a hit (the place only). Returns hit."""
    if not find_canary(text):
        return False
    with _lock:
        _pending.append(where)
    return True


def is_probe(logger_name: str) -> bool:
    """True for PROBE_LOGGER and the loggers below it."""
    return logger_name == PROBE_LOGGER or logger_name.startswith(PROBE_LOGGER + ".")


def raw_record_text(record: logging.LogRecord) -> str:
    """Everything a record carries that a handler could print: the message with its
    arguments, the exception with its chain and notes, and the stack."""
    try:
        parts = [record.getMessage()]
    except Exception:
        parts = [str(record.msg), repr(record.args)]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append("".join(traceback.format_exception(record.exc_info[1])))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


def install_record_factory() -> Callable[..., logging.LogRecord]:
    """Wrap the LogRecord factory so that each new record is scanned raw; return
    the previous factory (to restore)."""
    previous = logging.getLogRecordFactory()

    def scanning_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not is_probe(record.name):
            try:
                text = raw_record_text(record)
            except Exception:
                text = ""
            record_text(f"log record {record.name}:{record.levelname} (raw)", text)
        return record

    logging.setLogRecordFactory(scanning_factory)
    return previous


class TripwireHandler(logging.Handler):
    """Root-logger handler that records (never raises) when a record holds a canary."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:
            text = str(record.msg)
        record_text(f"log {record.name}:{record.levelname}", text)


class ErrorBodyTripwireMiddleware:
    """Test-only middleware: scans the body of every 4xx/5xx response."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from asgiref.sync import iscoroutinefunction, markcoroutinefunction

        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self._acall(request)
        return self._check(request, self.get_response(request))

    async def _acall(self, request: Any) -> Any:
        return self._check(request, await self.get_response(request))

    @staticmethod
    def _check(request: Any, response: Any) -> Any:
        if response.status_code >= 400 and not getattr(response, "streaming", False):
            body = response.content.decode("utf-8", "replace")
            record_text(f"http {response.status_code} {request.path}", body)
        return response


def _scan_sections(where: str, sections: Iterable[tuple[str, str]]) -> None:
    for title, content in sections:
        record_text(f"{where} [{title}]", content)


def pytest_configure(config: pytest.Config) -> None:
    handler = TripwireHandler(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    config._phi_tripwire_handler = handler  # type: ignore[attr-defined]
    config._phi_tripwire_factory = install_record_factory()  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = getattr(config, "_phi_tripwire_factory", None)
    if previous is not None:
        logging.setLogRecordFactory(previous)
    handler = getattr(config, "_phi_tripwire_handler", None)
    if handler is not None:
        logging.getLogger().removeHandler(handler)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    with _lock:
        found, _pending[:] = list(_pending), []
    if found:
        # Carried in the report, so xdist's controller sees hits made in workers.
        report.sections.append(("phi-tripwire", "\n".join(found)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    hits = [content for title, content in report.sections if title == "phi-tripwire"]
    for content in hits:
        _hits.extend(f"{report.nodeid}: {line}" for line in content.splitlines())
    others = [(t, c) for t, c in report.sections if t != "phi-tripwire"]
    _scan_sections(report.nodeid, others)
    with _lock:
        found, _pending[:] = list(_pending), []
    _hits.extend(f"{report.nodeid}: {where}" for where in found)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    with _lock:
        _hits.extend(f"session: {where}" for where in _pending)
        _pending.clear()
    if _hits and not hasattr(session.config, "workerinput"):
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _hits:
        terminalreporter.section("PHI tripwire", sep="!", red=True)
        for where in sorted(set(_hits)):
            terminalreporter.line(f"canary PHI seen in: {where}")
    else:
        terminalreporter.line("PHI tripwire: 0 canary hits in logs, output and errors")
