"""Client IPs come from trusted proxy hops only."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from stepsync.net import client_ip


def request_with(remote: str, forwarded: str = "") -> object:
    meta = {"REMOTE_ADDR": remote}
    if forwarded:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **meta)


def test_forwarded_header_is_ignored_without_trusted_proxies(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request_with("10.0.0.5", "203.0.113.9")) == "10.0.0.5"


def test_one_trusted_proxy_uses_the_rightmost_entry(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TRUSTED_PROXY_COUNT = 1
    request = request_with("10.0.0.1", "198.51.100.7, 203.0.113.9")
    assert client_ip(request) == "203.0.113.9"


def test_forged_leftmost_entries_do_not_change_the_ip(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TRUSTED_PROXY_COUNT = 1
    first = client_ip(request_with("10.0.0.1", "1.1.1.1, 203.0.113.9"))
    second = client_ip(request_with("10.0.0.1", "8.8.8.8, 203.0.113.9"))
    assert first == second == "203.0.113.9"


@pytest.mark.parametrize("garbage", ["not-an-ip", "", "999.1.1.1"])
def test_garbage_forwarded_values_fall_back_to_the_peer(settings, garbage: str) -> None:  # type: ignore[no-untyped-def]
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request_with("10.0.0.1", garbage or ",")) == "10.0.0.1"
