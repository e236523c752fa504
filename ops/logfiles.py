"""Log files under LOG_DIR: the handler that writes them (read by the PHI log scan).

Settings call ``file_handler_config(LOG_DIR, LOG_FORMAT)`` only when LOG_DIR is set and
add "file" to the root handlers, so that ``make run`` (LOG_DIR=var/log) leaves log
lines on disk for ``scan_logs_for_phi`` and the ``phi_in_logs`` alert to check. This
module is imported while logging is configured: it must not import Django models.
"""

from __future__ import annotations

import logging.handlers
import os
from pathlib import Path
from typing import Any

LOG_FILE_NAME = "stepsync.log"


class LogDirFileHandler(logging.handlers.WatchedFileHandler):
    """Append to ``<log_dir>/stepsync.log``; creates the folder (0700) and the file
    (0600), and reopens the file after an external rotation (logrotate)."""

    def __init__(self, log_dir: str, encoding: str = "utf-8") -> None:
        folder = Path(log_dir)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / LOG_FILE_NAME
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        super().__init__(str(path), mode="a", encoding=encoding)


def file_handler_config(log_dir: str, formatter: str) -> dict[str, Any]:
    """The LOGGING["handlers"]["file"] entry: same formatter and filters as console."""
    return {
        "()": "ops.logfiles.LogDirFileHandler",
        "log_dir": log_dir,
        "formatter": formatter,
        # Every handler carries the PHI filter (a test checks each one).
        "filters": ["request_id", "phi"],
    }
