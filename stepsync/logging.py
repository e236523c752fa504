"""Log set-up: JSON lines with a request id, and the PHI filter on every handler.

Content never enters a log by design; the PHI filter (chat.logging_filter) is the
last line of defence on every handler that can emit.
"""

from __future__ import annotations

import copy
import json
import logging
import logging.handlers
import os
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stepsync.request_context import request_id_var


class RequestIdFilter(logging.Filter):
    """Attach the current request id to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON line per record; exceptions give type and frames, never their text."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type only: its text may carry data from a request.
            payload["exc_type"] = record.exc_info[0].__name__
            payload["traceback"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(payload, ensure_ascii=True)


def phi_filter() -> logging.Filter:
    """A PHI filter for a LOGGING handler (the "phi" filter's factory).

    It also puts one on ``logging.lastResort``, the stderr handler Python uses for
    records of a logger with no handler on its way to the root (uvicorn.access has
    none and does not propagate), so that handler redacts too.
    """
    from chat.logging_filter import PHIRedactingFilter

    last_resort = logging.lastResort
    if last_resort is not None and not any(
        isinstance(f, PHIRedactingFilter) for f in last_resort.filters
    ):
        last_resort.addFilter(PHIRedactingFilter())
    return PHIRedactingFilter()


def uvicorn_log_config() -> dict[str, Any]:
    """settings.LOGGING for ``uvicorn.run(log_config=...)``.

    uvicorn applies it in every worker process before it loads the app, in place
    of its default config whose handlers have no PHI filter; uvicorn's own loggers
    then propagate to our filtered root handlers.
    """
    from django.conf import settings

    return copy.deepcopy(settings.LOGGING)


LOG_FILE_NAME = "stepsync.log"


class LogDirFileHandler(logging.handlers.WatchedFileHandler):
    """Append to ``<log_dir>/stepsync.log`` (folder 0700, file 0600), reopening the
    file after an external rotation (logrotate). Used when LOG_DIR is set, so that
    ``scan_logs_for_phi`` and the ``phi_in_logs`` alert have lines to check."""

    def __init__(self, log_dir: str, encoding: str = "utf-8") -> None:
        folder = Path(log_dir)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / LOG_FILE_NAME
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        super().__init__(str(path), mode="a", encoding=encoding)


def file_handler_config(log_dir: str, formatter: str) -> dict[str, Any]:
    """The LOGGING["handlers"]["file"] entry: same formatter and filters as console."""
    return {
        "()": "stepsync.logging.LogDirFileHandler",
        "log_dir": log_dir,
        "formatter": formatter,
        # Every handler carries the PHI filter (a test checks each one).
        "filters": ["request_id", "phi"],
    }
