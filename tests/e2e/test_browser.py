"""The web UI in headless Chromium (Debian's, driven by Playwright): a new user's path.

Screenshots of each step go to test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

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
SHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
PASSWORD = "blue heron walks 7 miles"
SAMSUNG = "my steps stopped syncing on my Samsung"
CANARY_EMAIL = "canary.patient@example.org"
TIMEOUT_MS = 15_000


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian chromium is not installed (make system-deps)")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the test's own
    # database reads are plain synchronous calls between its steps.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=live_server.url
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.problems = []  # console errors and CSP violations
    page.on(
        "console",
        lambda msg: page.problems.append(msg.text) if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: page.problems.append(str(exc)))
    page.on(
        "response",
        lambda r: (
            page.problems.append(f"{r.status} {r.url}") if r.status >= 400 else None
        ),
    )
    yield page
    context.close()


def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def assistant_count(page: Any) -> int:
    return int(page.locator(".message-assistant").count())


def send_and_wait(page: Any, text: str) -> None:
    before = assistant_count(page)
    page.get_by_label("Your message").fill(text)
    page.get_by_label("Your message").press("Enter")
    try:
        page.wait_for_function(
            "n => document.querySelectorAll('.message-assistant[data-message-id]')"
            ".length > n && !document.querySelector('.message-pending')",
            arg=before,
        )
    except Exception:
        status = page.locator("#chat-status").inner_text()
        raise AssertionError(f"no reply; notice: {status!r}") from None


def sign_up(page: Any, username: str) -> None:
    page.goto("/")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/conversations/")


def test_a_new_user_signs_up_chats_renames_and_deletes(page: Any) -> None:
    page.goto("/")
    shot(page, "01-start-page")
    sign_up(page, "heron_walker")
    shot(page, "02-conversation-list-empty")

    page.get_by_role("button", name="New conversation").click()
    page.wait_for_selector(".message-assistant")
    assert (
        "AI assistant" in page.locator(".message-assistant .badge").first.inner_text()
    )
    shot(page, "03-chat-welcome")

    send_and_wait(page, SAMSUNG)
    last = page.locator(".message-assistant").last
    assert "Where do your steps come from?" in last.inner_text()
    assert page.evaluate("document.activeElement.id") == "id_text"
    shot(page, "04-chat-first-reply")

    button = page.get_by_role("button", name="Samsung Health")
    button.focus()
    before = assistant_count(page)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('.message-assistant[data-message-id]')"
        ".length > n",
        arg=before,
    )
    answer = page.locator(".message-assistant").last.inner_text()
    assert "Samsung Health" in answer or "Health Connect" in answer
    shot(page, "05-chat-quick-reply-answer")

    send_and_wait(page, f"still nothing, you can e-mail me at {CANARY_EMAIL}")
    notice = page.locator(".message-user").last.inner_text()
    assert "We removed 1 e-mail address before saving your message" in notice
    assert CANARY_EMAIL not in page.content()
    shot(page, "06-chat-redaction-notice")

    page.set_viewport_size({"width": 375, "height": 812})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "07-chat-phone-375px")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("link", name="All conversations").click()
    page.get_by_role("link", name="Rename").first.click()
    page.get_by_label("New name").fill("Samsung sync")
    page.get_by_role("button", name="Save name").click()
    page.wait_for_url("**/conversations/")
    assert page.get_by_role("link", name="Samsung sync", exact=True).is_visible()
    shot(page, "08-conversation-renamed")

    page.get_by_role("link", name="Delete Samsung sync").click()
    shot(page, "09-delete-confirmation")
    page.get_by_role("button", name="Delete permanently").click()
    page.wait_for_url("**/conversations/")
    assert page.get_by_role("link", name="Samsung sync", exact=True).count() == 0
    shot(page, "10-conversation-deleted")

    assert page.problems == []


def test_the_chat_works_without_javascript(browser: Any, live_server: Any) -> None:
    context = browser.new_context(
        java_script_enabled=False,
        viewport={"width": 375, "height": 812},
        base_url=live_server.url,
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    sign_up(page, "no_script_walker")
    page.get_by_role("button", name="New conversation").click()

    page.get_by_label("Your message").fill(SAMSUNG)
    page.get_by_role("button", name="Send").click()

    page.wait_for_url("**/conversations/*/#latest")
    assert "Where do your steps come from?" in page.content()
    shot(page, "11-no-javascript-phone")
    context.close()


def sse(*events: tuple[str, dict[str, Any]]) -> str:
    return "".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events
    )


def open_new_chat(page: Any, username: str) -> None:
    sign_up(page, username)
    page.get_by_role("button", name="New conversation").click()
    page.wait_for_selector(".message-assistant")


def test_a_streamed_reply_is_shown_and_replaced_by_the_stored_one(page: Any) -> None:
    open_new_chat(page, "stream_walker")
    done = {
        "user_message": {"id": 9001, "text": "steps late", "redactions": {}},
        "reply": {
            "id": 9002,
            "text": "Open Health Connect and allow Samsung Health to write Steps.",
            "source": "llm",
            "quick_replies": [{"label": "That fixed it", "value": "fixed"}],
            "notice": "",
        },
    }
    body = sse(
        ("delta", {"text": "Open Health "}),
        ("delta", {"text": "Connect"}),
        ("done", done),
    )
    page.route(
        "**/api/conversations/*/messages/",
        lambda route: route.fulfill(
            status=200, body=body, headers={"Content-Type": "text/event-stream"}
        ),
    )

    send_and_wait(page, "steps late")

    last = page.locator(".message-assistant").last
    assert "allow Samsung Health to write Steps" in last.inner_text()
    assert last.get_by_role("button", name="That fixed it").is_visible()
    shot(page, "12-streamed-reply")


def test_an_interrupted_stream_keeps_the_partial_reply_marked_incomplete(
    page: Any,
) -> None:
    open_new_chat(page, "broken_stream_walker")
    body = sse(
        ("delta", {"text": "First, open Samsung"}),
        ("error", {"error": "llm_unavailable", "message": "The reply was cut off."}),
    )
    page.route(
        "**/api/conversations/*/messages/",
        lambda route: route.fulfill(
            status=200, body=body, headers={"Content-Type": "text/event-stream"}
        ),
    )

    page.get_by_label("Your message").fill("steps late")
    page.get_by_label("Your message").press("Enter")

    page.wait_for_selector(".message-incomplete")
    assert "The reply was cut off." in page.locator("#chat-status").inner_text()
    assert "First, open Samsung" in page.locator(".message-incomplete").inner_text()


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (
            422,
            {"error": "phi_blocked", "message": "x", "types": ["SSN"]},
            {},
            "not sent because it contained: Social Security number",
        ),
        (
            429,
            {"error": "rate_limited", "message": "Too many requests."},
            {"Retry-After": "30"},
            "You're sending messages too quickly — try again in 30 seconds",
        ),
        (
            409,
            {"error": "conversation_closed", "message": "x"},
            {},
            "Start a new conversation",
        ),
    ],
)
def test_api_errors_become_plain_notices(
    page: Any, status: int, body: dict[str, Any], headers: dict[str, str], expected: str
) -> None:
    open_new_chat(page, f"walker_{status}")
    page.route(
        "**/api/conversations/*/messages/",
        lambda route: route.fulfill(
            status=status,
            body=json.dumps(body),
            headers={"Content-Type": "application/json", **headers},
        ),
    )

    page.get_by_label("Your message").fill("hello")
    page.get_by_label("Your message").press("Enter")

    page.wait_for_function(
        "t => document.getElementById('chat-status').innerText.includes(t)",
        arg=expected,
    )
    shot(page, f"13-notice-{status}")
