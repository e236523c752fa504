"""Sentry set-up that leaks nothing (RELIABILITY.md §1.6): only when SENTRY_DSN is set.

Defaults and even EventScrubber leak PHI through frame locals, breadcrumbs and
exception messages. We turn locals and request bodies off, drop request data, keep
breadcrumbs to their category, and run every remaining string through the project's
text redactor (PHI_REDACTOR, a dotted path to ``str -> str``; chat registers the
sanitizer). If the redactor fails, strings are replaced wholesale: it fails closed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.utils.module_loading import import_string

REDACTED = "[redacted]"
# Defence in depth beneath the sanitizer: long digit runs and e-mail shapes.
_SHAPES = re.compile(r"\d[\d\s().-]{5,}\d|[^\s@]+@[^\s@]+")
_DROP_KEYS = ("request", "extra", "server_name", "modules")


@lru_cache(maxsize=1)
def _redactor() -> Callable[[str], str]:
    from django.conf import settings

    return import_string(settings.PHI_REDACTOR)


def scrub_text(text: str) -> str:
    """Redact identifiers from one string; on any failure return a fixed marker."""
    try:
        return _SHAPES.sub(REDACTED, _redactor()(text))
    except Exception:
        return REDACTED


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Drop request data and extras; keep only the user id; redact every string."""
    for key in _DROP_KEYS:
        event.pop(key, None)
    user = event.get("user") or {}
    event["user"] = {"id": user["id"]} if "id" in user else {}
    for frame_holder in (event.get("exception") or {}).get("values", []):
        for frame in (frame_holder.get("stacktrace") or {}).get("frames", []):
            frame.pop("vars", None)
    event.pop("breadcrumbs", None)
    return _scrub(event)


def before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Keep a breadcrumb's category, level and time; drop its message and data."""
    return {
        key: crumb[key]
        for key in ("category", "level", "timestamp", "type")
        if key in crumb
    }


def sentry_options(dsn: str, **extra: Any) -> dict[str, Any]:
    """The options every Sentry client of this project must use."""
    return {
        "dsn": dsn,
        # send_default_pii is deprecated in sentry-sdk 2.75 and off by default;
        # a test asserts the client never turns it on.
        "include_local_variables": False,
        "include_source_context": False,
        "max_request_body_size": "never",
        "before_send": before_send,
        "before_breadcrumb": before_breadcrumb,
        "traces_sample_rate": 0.0,
        **extra,
    }


def init_sentry(dsn: str, **extra: Any) -> None:
    """Initialise Sentry with the leak-proof options (called from settings)."""
    import sentry_sdk

    sentry_sdk.init(**sentry_options(dsn, **extra))
    _filter_sentry_debug_log()


def _filter_sentry_debug_log() -> None:
    """sentry-sdk gives its ``sentry_sdk.errors`` logger a stderr handler of its own
    (it prints only with ``debug=True``, which we never set); filter it like ours."""
    from stepsync.logging import phi_filter

    for handler in logging.getLogger("sentry_sdk.errors").handlers:
        fresh = phi_filter()
        if not any(type(f) is type(fresh) for f in handler.filters):
            handler.addFilter(fresh)
