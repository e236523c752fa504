"""Fixtures of the browser tests: Debian's Chromium driving the production servers.

Once per session: the LLM test server (tests/llm_server.py, in this process) and the
app exactly as production runs it (``python -m stepsync.serve``, ASGI under uvicorn,
through bench/load/harness.py) with the test server configured as its LLM, on a
freshly migrated SQLCipher database with seeded accounts (tests/e2e/app_setup.py). A
second server on the same database, in strict PHI mode with a low per-user message
rate, starts only when a test asks for it. At the end the servers stop and their
logs, every database row and the raw database bytes are scanned for PHI canaries.

Each test gets its own accounts and conversations; before each test the LLM test
server's script is cleared, and after it the requests the LLM received are checked
for canaries and the breaker is closed again if the test left it otherwise, so the
tests do not depend on their order.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from bench.load import harness
from tests.chaos.conftest import Deployment
from tests.e2e import pages
from tests.llm_server import LLMTestServer
from tests.phi_tripwire import find_canary

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# One chat account per purpose: a test never meets another test's conversations,
# limits or audit rows.
CHAT_USERS = (
    "rules",
    "stream",
    "cut",
    "fallback",
    "redact",
    "ratelimit",
    "strict",
    "timeout",
    "patient",
    "audited",
)
APP_ENV = {
    # Serve static files from static/ as they are now (no stale collectstatic copy).
    "WHITENOISE_USE_FINDERS": "true",
    # Backoff between the LLM retries kept short: the fallback test waits for them.
    "LLM_RETRY_INITIAL_DELAY_SECONDS": "0.1",
    "LLM_RETRY_MAX_DELAY_SECONDS": "0.2",
}
GUARDED_ENV = {
    "PHI_SANITIZER_STRICT_MODE": "true",
    "RATE_LIMIT_MESSAGES_PER_MINUTE": "3",
}


def _browser_or_skip() -> None:
    if os.access(CHROMIUM, os.X_OK):
        return
    if os.environ.get("REQUIRE_BROWSER"):
        pytest.fail(f"REQUIRE_BROWSER is set but {CHROMIUM} is missing")
    pytest.skip(
        f"{CHROMIUM} is not installed (make system-deps): browser tests skipped"
    )


@dataclass
class Site:
    """The running deployment: its config, its servers and the seeded accounts."""

    config: harness.AppConfig
    app: harness.Server
    llm: LLMTestServer
    accounts: dict[str, Any]

    @property
    def base_url(self) -> str:
        return self.app.base_url

    @property
    def password(self) -> str:
        return str(self.accounts["password"])

    def user(self, name: str) -> dict[str, Any]:
        return dict(self.accounts["users"][name])

    def staff(self, role: str) -> dict[str, Any]:
        return dict(self.accounts["staff"][role])

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple]:
        return harness.db_rows(self.config, sql, params)

    def breaker_state(self) -> str:
        request = urllib.request.Request(
            self.base_url + "/health/",
            headers={
                "Authorization": f"Bearer {self.config.env['HEALTH_CHECK_TOKEN']}"
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.loads(response.read())["circuit_breaker"]["state"])


@pytest.fixture(scope="session")
def llm_server() -> Iterator[LLMTestServer]:
    server = LLMTestServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def site(
    tmp_path_factory: pytest.TempPathFactory, llm_server: LLMTestServer
) -> Iterator[Site]:
    _browser_or_skip()
    pages.SHOTS.mkdir(parents=True, exist_ok=True)
    for old in pages.SHOTS.glob("*.png"):
        old.unlink()
    config = harness.app_config(
        tmp_path_factory.mktemp("e2e"), llm_base_url=llm_server.base_url, extra=APP_ENV
    )
    harness.prepare_database(config)
    seeded = harness.run_python(
        config, "tests.e2e.app_setup", "seed", "--users", ",".join(CHAT_USERS)
    )
    app = harness.start_app(config, workers=2, jobs=False, name="app", wait=False)
    try:
        app.wait_http("/health/live", timeout=90)
        yield Site(config, app, llm_server, json.loads(seeded.splitlines()[-1]))
    finally:
        app.stop()
    hits = Deployment(config=config, app=app, llm=None, workers=2).phi_hits()
    assert hits == [], f"PHI canary found in: {hits}"


@pytest.fixture(scope="session")
def guarded_url(site: Site) -> Iterator[str]:
    """A second server on the same database: strict PHI mode, 3 messages a minute."""
    config = harness.app_config(
        site.config.var_dir,
        llm_base_url=site.llm.base_url,
        keys_from=site.config,
        extra={**APP_ENV, **GUARDED_ENV},
    )
    server = harness.start_app(
        config, workers=1, jobs=False, name="guarded", wait=False
    )
    try:
        server.wait_http("/health/live", timeout=90)
        yield server.base_url
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_llm_and_closed_breaker(site: Site) -> Iterator[None]:
    site.llm.reset()
    yield
    seen_by_llm = json.dumps([request["body"] for request in site.llm.requests])
    site.llm.reset()
    if site.breaker_state() != "closed":
        harness.run_python(site.config, "tests.e2e.app_setup", "breaker-reset")
    assert not find_canary(seen_by_llm), "a PHI canary reached the LLM"


# Module scope: Playwright's sync API keeps an asyncio loop running in the main thread
# while it is open, which breaks later tests that call asyncio.run().
@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any, site: Site) -> Iterator[Callable[..., Any]]:
    """Factory: ``new_page(base_url=..., **context_options)`` -> a page in a fresh
    browser context (its own cookies), closed after the test."""
    contexts: list[Any] = []

    def make(base_url: str = "", **options: Any) -> Any:
        context = browser.new_context(
            base_url=base_url or site.base_url,
            viewport=options.pop("viewport", {"width": 1280, "height": 900}),
            **options,
        )
        contexts.append(context)
        return pages.watch(context.new_page())

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    return new_page()
