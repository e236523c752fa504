"""What a person does in the browser, as small steps the e2e tests share.

Logging in (chat and admin, with the TOTP second factor computed from the device
key as an authenticator app would), sending a message and waiting for the stored
reply, watching a reply stream in, and numbered screenshots under
test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django_otp.oath import TOTP

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
TIMEOUT_MS = 15_000
ASSISTANT_DONE = ".message-assistant[data-message-id]"
FALLBACK_NOTICE = "Answered by the built-in troubleshooting guide"
CONVERSATION_URL = re.compile(r"/conversations/[0-9]+/")

# Records each distinct text of the streaming bubble, and whether the bubble carried
# the message-streaming class, from the moment it is installed.
WATCH_STREAM_JS = """() => {
  window.__streamed = [];
  window.__sawStreaming = false;
  const list = document.getElementById("message-list");
  new MutationObserver(() => {
    const text = list.querySelector(".message-streaming .message-text");
    if (!text) { return; }
    window.__sawStreaming = true;
    const seen = window.__streamed;
    if (text.textContent && seen[seen.length - 1] !== text.textContent) {
      seen.push(text.textContent);
    }
  }).observe(list, {subtree: true, childList: true, characterData: true,
                    attributes: true});
}"""


@dataclass
class Shots:
    """``shot("name")`` saves ``<prefix>-<n>-name.png``, n counting up per test."""

    prefix: str
    taken: list[str] = field(default_factory=list)

    def __call__(self, page: Any, name: str, *, full_page: bool = True) -> None:
        filename = f"{self.prefix}-{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(SHOTS / filename), full_page=full_page)
        self.taken.append(filename)


def watch(page: Any) -> Any:
    """Set the default timeout and collect console errors and 4xx/5xx responses."""
    page.set_default_timeout(TIMEOUT_MS)
    page.problems = []
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
    return page


def admin_problems(page: Any) -> list[str]:
    """A page's problems less Chromium's bare "Failed to load resource" line: the
    admin pages declare no icon, so the browser's own /favicon.ico request 404s
    (a request Playwright does not report). Any 4xx/5xx response of the page itself
    is still listed, with its URL."""
    return [p for p in page.problems if not p.startswith("Failed to load resource")]


def totp_token(key_hex: str) -> str:
    """The current six-digit code of a django-otp TOTP device (its default step,
    origin and digits), as the person's authenticator app shows it."""
    return f"{TOTP(bytes.fromhex(key_hex)).token():06d}"


def log_in(page: Any, username: str, password: str) -> None:
    page.goto("/login/?next=/conversations/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/conversations/")


def admin_log_in(page: Any, username: str, password: str, key_hex: str) -> None:
    """Password on the admin login page, then the TOTP code on the MFA page."""
    page.goto("/admin/")
    page.get_by_label("Username:").fill(username)
    page.get_by_label("Password:").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/mfa/verify/**")
    page.get_by_label("Token").fill(totp_token(key_hex))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(lambda url: "/mfa/" not in url and "/login/" not in url)


def sign_up(page: Any, username: str, password: str) -> None:
    page.goto("/")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password:", exact=True).fill(password)
    page.get_by_label("Password again").fill(password)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/conversations/")


def new_conversation(page: Any) -> None:
    """Press "New conversation" and wait for the chat page's load event: the
    composer's script is deferred, and Enter typed before it runs is a newline."""
    page.get_by_role("button", name="New conversation").click()
    page.wait_for_url(CONVERSATION_URL)
    page.wait_for_selector(".message-assistant")


def start_chat(page: Any) -> None:
    """From the conversation list: a new conversation, its welcome shown."""
    page.goto("/conversations/")
    new_conversation(page)


def assistant_count(page: Any) -> int:
    return int(page.locator(ASSISTANT_DONE).count())


def type_and_send(page: Any, text: str) -> None:
    """Type into the composer and press Enter (the keyboard path)."""
    page.get_by_label("Your message").fill(text)
    page.get_by_label("Your message").press("Enter")


def wait_for_reply(page: Any, before: int) -> Any:
    """Wait until a stored reply beyond ``before`` is shown; return the last one."""
    try:
        page.wait_for_function(
            "n => document.querySelectorAll('.message-assistant[data-message-id]')"
            ".length > n && !document.querySelector('.message-pending')",
            arg=before,
        )
    except Exception:
        status = page.locator("#chat-status").inner_text()
        raise AssertionError(f"no reply; notice: {status!r}") from None
    return page.locator(ASSISTANT_DONE).last


def send_and_wait(page: Any, text: str) -> Any:
    before = assistant_count(page)
    type_and_send(page, text)
    return wait_for_reply(page, before)


def wait_for_notice(page: Any, text: str) -> str:
    """Wait until the chat's status area shows ``text``; return all of it."""
    try:
        page.wait_for_function(
            "t => document.getElementById('chat-status').innerText.includes(t)",
            arg=text,
        )
    except Exception:
        status = page.locator("#chat-status").inner_text()
        raise AssertionError(f"notice not shown; notice: {status!r}") from None
    return str(page.locator("#chat-status").inner_text())


def watch_stream(page: Any) -> None:
    page.evaluate(WATCH_STREAM_JS)


def streamed_states(page: Any) -> tuple[bool, list[str]]:
    """(whether a message-streaming bubble was seen, each distinct text it showed)."""
    return (
        bool(page.evaluate("window.__sawStreaming")),
        list(page.evaluate("window.__streamed")),
    )
