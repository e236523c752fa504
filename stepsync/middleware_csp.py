"""django-csp's middleware, with the settings' policy header built once, not per response.

Mirrors django-csp 4.0's ``process_response``: re-read it when upgrading django-csp.

``csp.middleware.CSPMiddleware`` builds the header from the settings on every
response: two ``build_policy`` calls over ``dataclasses.asdict`` copies, ~1.6 % of
a chat turn's CPU in the py-spy profile of ``bench/bench_turn.py llm`` (issue 8).
Almost every response uses the settings' policy unchanged: no nonce drawn, no
``@csp``/``@csp_update``/``@csp_replace`` on the view. For those, this
subclass sets the same headers from strings built once (again after a
``CONTENT_SECURITY_POLICY*`` setting changes); any other response goes through
django-csp's own code, unchanged.
"""

from __future__ import annotations

import functools
import http.client
from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase

# Set by django-csp's decorators on a response; any of them means a per-view policy.
PER_VIEW_ATTRIBUTES = tuple(
    f"_csp_{kind}{suffix}"
    for kind in ("config", "update", "replace")
    for suffix in ("", "_ro")
)
# (header, its setting, the response attribute that exempts it, report only)
HEADERS = (
    (HEADER, "CONTENT_SECURITY_POLICY", "_csp_exempt", False),
    (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", "_csp_exempt_ro", True),
)
DEBUG_PAGES = (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND)


@functools.cache
def settings_policy(report_only: bool) -> str:
    """The header value django-csp builds from the settings alone ("" for none)."""
    return str(build_policy(report_only=report_only))


@receiver(setting_changed)
def _forget_policies(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        settings_policy.cache_clear()


def uses_settings_policy(request: HttpRequest, response: HttpResponseBase) -> bool:
    """True when django-csp would build the header from the settings alone."""
    if getattr(request, "_csp_nonce", None) is not None:
        return False
    if settings.DEBUG and response.status_code in DEBUG_PAGES:
        return False  # django-csp leaves Django's debug pages alone
    return all(getattr(response, name, None) is None for name in PER_VIEW_ATTRIBUTES)


class CSPMiddleware(BaseCSPMiddleware):
    """django-csp's middleware; the settings' policy comes from a cache."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if not uses_settings_policy(request, response):
            return super().process_response(request, response)
        for header, setting, exempt_attribute, report_only in HEADERS:
            policy = settings_policy(report_only)
            if (
                policy
                and header not in response
                and getattr(response, exempt_attribute, False) is False
                and not _excluded(request, setting)
            ):
                response[header] = policy
        # As django-csp does: a nonce drawn after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]  # django-csp's request attribute
        return response


def _excluded(request: HttpRequest, setting: str) -> bool:
    policy = getattr(settings, setting, None) or {}
    prefixes: tuple[str, ...] = tuple(policy.get("EXCLUDE_URL_PREFIXES") or ())
    return bool(prefixes) and request.path_info.startswith(prefixes)
