"""The start-up warm-up loads the URLconf's views and the LLM client's pieces."""

from __future__ import annotations

import sys

from chat.llm_client import tls_context
from stepsync.warmup import warm


def test_warm_up_resolves_the_message_endpoint_to_its_view() -> None:
    resolved = warm()

    assert "chat_api:message-create" in resolved


def test_warm_up_resolves_every_path_it_names() -> None:
    assert all(warm())


def test_warm_up_imports_the_llm_transport_and_builds_the_tls_context() -> None:
    tls_context.cache_clear()

    warm()

    assert "httpx_aiohttp" in sys.modules
    assert tls_context.cache_info().currsize == 1
