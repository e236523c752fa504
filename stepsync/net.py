"""Client addresses: REMOTE_ADDR, or X-Forwarded-For only as far as proxies are trusted."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str:
    """The client's IP address; forged X-Forwarded-For entries are never trusted.

    With ``TRUSTED_PROXY_COUNT = n`` the n-th address from the right of
    X-Forwarded-For is the one our own outermost proxy saw; anything to its left was
    written by the client and is ignored. With n = 0 the header is ignored entirely.
    """
    remote = _valid_ip(request.META.get("REMOTE_ADDR", "")) or "0.0.0.0"  # noqa: S104
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    chain = [p for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p]
    if len(chain) < proxies:
        return remote
    return _valid_ip(chain[-proxies]) or remote


def client_ip_for_axes(request: HttpRequest) -> str:
    """Adapter for django-axes' AXES_CLIENT_IP_CALLABLE."""
    return client_ip(request)
