"""Port through which compliance redacts identifiers in free text, failing closed.

compliance never imports chat, so the sanitizer is plugged in from outside:
chat's AppConfig.ready() calls ``register(fn)`` with a ``str -> str`` function that
returns the redacted text. ``guard()`` runs it; when nothing is registered, or the
function raises or returns something that is not a string, the whole text is
replaced by ``UNAVAILABLE_TEXT`` so that no unchecked text is ever stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.views.decorators.debug import sensitive_variables

logger = logging.getLogger(__name__)

UNAVAILABLE_TEXT = "[REDACTED: sanitizer unavailable]"

Sanitize = Callable[[str], str]

_lock = threading.Lock()
_sanitizer: Sanitize | None = None


def register(fn: Sanitize | None) -> None:
    """Install the redaction function (``None`` uninstalls it; tests use that)."""
    global _sanitizer
    with _lock:
        _sanitizer = fn


def registered() -> Sanitize | None:
    """The installed redaction function, or None."""
    return _sanitizer


@sensitive_variables("text", "cleaned")
def guard(text: str) -> str:
    """Return ``text`` with identifiers redacted; fail closed on any problem.

    Empty text is returned as is. The input never reaches a log or an exception:
    a failure is logged by event name only.
    """
    if not text:
        return ""
    fn = _sanitizer
    if fn is None:
        logger.error("text_guard.unavailable reason=not_registered")
        return UNAVAILABLE_TEXT
    try:
        cleaned = fn(text)
    except Exception:
        logger.error("text_guard.unavailable reason=sanitizer_error")
        return UNAVAILABLE_TEXT
    if not isinstance(cleaned, str):
        logger.error("text_guard.unavailable reason=bad_result")
        return UNAVAILABLE_TEXT
    return cleaned
