"""Run in a fresh interpreter by tests/stepsync/test_logging_phi.py: set logging up
as the real processes do, then report on it or log through it.

``python -m tests.stepsync.runtime_logging handlers``
    Configure logging as ``python -m stepsync.serve`` does (Django set-up, then
    uvicorn's Config built from the arguments serve passes to ``uvicorn.run``),
    load the ASGI app and URLconf, and print one JSON line: every handler attached
    to the root or any logger, and those without the PHI filter.
``python -m tests.stepsync.runtime_logging django-request``
    Hand Django's request handler an exception holding a canary SSN, as a view
    raising it would (it logs the 500 on ``django.request``); print the status.
``python -m tests.stepsync.runtime_logging event``
    Log one INFO and one WARNING event (with an exception holding a canary) under
    request id ``req-test-42``; print the effective level of a few loggers.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

import django

SSN = "123-45-6789"


def configure_like_serve() -> None:
    """Run stepsync.serve.serve() up to uvicorn.run, and build uvicorn's Config from
    the arguments it receives (uvicorn.run starts that way; Config applies
    log_config). The database check is skipped: this process has no database."""
    import uvicorn

    import stepsync.serve as serve
    import stepsync.startup

    def build_config(app: str, **kwargs: Any) -> None:
        uvicorn.Config(app, **kwargs)

    uvicorn.run = build_config  # type: ignore[assignment]
    stepsync.startup.verify_database = lambda: None  # type: ignore[assignment]
    args = argparse.Namespace(host="127.0.0.1", port=0, workers=1, no_jobs=True)
    serve.serve(args)


def every_handler() -> list[tuple[str, logging.Handler]]:
    """(logger name, handler) for the root, every logger, and logging.lastResort."""
    loggers: list[tuple[str, logging.Logger]] = [("root", logging.getLogger())]
    loggers += [
        (name, logger)
        for name, logger in sorted(logging.Logger.manager.loggerDict.items())
        if isinstance(logger, logging.Logger)
    ]
    found = [(name, handler) for name, logger in loggers for handler in logger.handlers]
    if logging.lastResort is not None:
        found.append(("lastResort", logging.lastResort))
    return found


def report_handlers() -> None:
    from django.core.asgi import get_asgi_application
    from django.urls import get_resolver

    from chat.logging_filter import PHIRedactingFilter

    configure_like_serve()
    get_asgi_application()
    get_resolver().url_patterns  # noqa: B018 - imports every view module
    handlers = every_handler()
    unfiltered = [
        f"{name}: {type(handler).__name__}"
        for name, handler in handlers
        if not any(isinstance(f, PHIRedactingFilter) for f in handler.filters)
    ]
    names = [f"{name}: {type(handler).__name__}" for name, handler in handlers]
    print(json.dumps({"handlers": names, "unfiltered": unfiltered}))


def log_a_server_error() -> None:
    from django.core.handlers.exception import response_for_exception
    from django.test import RequestFactory

    django.setup()
    request = RequestFactory().get("/api/conversations/")
    try:
        raise ValueError(f"could not store ssn {SSN}")
    except ValueError as exc:
        # What Django's handler does with an exception a view raised.
        response = response_for_exception(request, exc)
    print(f"status {response.status_code}")


def log_an_event() -> None:
    from stepsync.request_context import request_id_var

    django.setup()
    request_id_var.set("req-test-42")
    logger = logging.getLogger("chat.services")
    logger.info("llm.reply conversation=%s", 7)
    try:
        raise ValueError(f"upstream said {SSN}")
    except ValueError:
        logger.warning(
            "llm.fail conversation=%s code=%s", 7, "bad_response", exc_info=True
        )
    levels = {
        name or "root": logging.getLevelName(
            logging.getLogger(name).getEffectiveLevel()
        )
        for name in ("", "chat.services", "django", "django.server", "uvicorn.error")
    }
    print(json.dumps(levels))


def main(argv: list[str]) -> None:
    actions = {
        "handlers": report_handlers,
        "django-request": log_a_server_error,
        "event": log_an_event,
    }
    actions[argv[0]]()


if __name__ == "__main__":
    main(sys.argv[1:])
