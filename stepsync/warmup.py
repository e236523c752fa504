"""A server process loads at start-up what its first requests would load.

Django imports the URLconf (every view module, DRF, drf-spectacular) on the first
request, and the LLM client's transport (aiohttp) and TLS context (certifi's CA
bundle, ~35 ms) on the first LLM call. Measured
in a fresh process (bench/bench_turn.py's setup): the first rules turn took 550 ms
of CPU and the first LLM turn 80 ms, against 9 and 14 ms warm. Every request that
reaches a cold worker in that time waits behind it; with two workers that is the
whole P99 of a load that starts at once (bench_load rules-100: every request over
250 ms was in its first two seconds). Loaded here, before ``gc.freeze()``, these
modules are also frozen out of the collector's full collections.

Nothing here touches the database or the network, and nothing is user data.
"""

from __future__ import annotations

import importlib

from django.conf import settings
from django.urls import Resolver404, get_resolver
from django.utils.module_loading import import_string

from chat.llm_client import tls_context

# Modules imported on first use rather than by the URLconf.
LAZY_MODULES = ("httpx_aiohttp", "aiohttp")
# Classes that Django's middleware imports by name on first use.
LAZY_SETTINGS = ("MESSAGE_STORAGE", "SESSION_SERIALIZER", "SESSION_ENGINE")
# A path per URLconf branch, so that every include() is loaded and its
# resolver populated (the resolver caches per URLconf module).
PATHS = ("/", "/api/conversations/1/messages/", "/health/live", "/admin/login/")


def warm() -> list[str]:
    """Import the URLconf and the lazily imported modules; returns what was
    resolved (the view names), for the start-up test."""
    resolver = get_resolver()
    resolved = []
    for path in PATHS:
        try:
            resolved.append(resolver.resolve(path).view_name)
        except Resolver404:
            resolved.append("")
    for name in LAZY_MODULES:
        importlib.import_module(name)
    for setting in LAZY_SETTINGS:
        path = getattr(settings, setting)
        if setting == "SESSION_ENGINE":  # a module, the others are classes
            importlib.import_module(path)
        else:
            import_string(path)
    tls_context()
    return resolved
