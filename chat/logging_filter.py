"""The last line of defence for logs: every record's text goes through the sanitizer.

The code logs ids and counts only; this filter catches mistakes. It is attached to
every handler in LOGGING and also serves as the redactor for Sentry events
(settings.PHI_REDACTOR). It fails closed: if redaction fails, the text is dropped.
"""

from __future__ import annotations

import logging

from chat.sanitizer import sanitize

DROPPED = "[log text dropped: redaction failed]"


def redact(text: str) -> str:
    """Return ``text`` with identifiers replaced by typed placeholders (fails closed)."""
    try:
        result = sanitize(text)
    except Exception:
        return DROPPED
    return DROPPED if result.blocked else result.text


class PHIRedactingFilter(logging.Filter):
    """Replace a record's message, exception text and stack with redacted forms."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg, record.args = redact(message), ()
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        # Always, even when set: a handler without this filter that ran first (a
        # formatter caches exc_text on the shared record) left it unredacted.
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
