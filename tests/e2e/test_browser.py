"""The chat in headless Chromium against the production ASGI server, nothing mocked.

Debian's Chromium (driven by Playwright) talks to ``python -m stepsync.serve`` whose
LLM is the local OpenAI-compatible test server (tests/e2e/conftest.py): rule
answers, a streamed LLM answer, a cut stream, the fallback when the LLM fails,
redaction, the rate limit, strict mode and a timed-out conversation are all seen as
a person sees them. Screenshots of each step go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from bench.load import harness
from tests.e2e import pages
from tests.e2e.conftest import Site
from tests.e2e.pages import FALLBACK_NOTICE, Shots
from tests.llm_server import Fault

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "blue heron walks 7 miles"
SAMSUNG = "my steps stopped syncing on my Samsung"
RULE_TEXT = "my steps aren't syncing"
LLM_TEXT = "What do you think about walking in the rain?"
CANARY_EMAIL = "canary.patient@example.org"
PHONE = "415-555-0134"
CANARY_SSN = "123-45-6789"
LLM_REPLY = (
    "First, open the step app once. Then check that background refresh is on. "
    "Next, make sure only one app writes steps. Finally, wait a quarter of an hour "
    "and look again."
)


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def stored(site: Site, message_id: str) -> tuple[str, str]:
    """(source, status) of a stored message, read straight from the database."""
    rows = site.rows(
        "SELECT source, status FROM chat_message WHERE id = ?", (int(message_id),)
    )
    return str(rows[0][0]), str(rows[0][1])


def open_chat_as(page: Any, site: Site, name: str) -> None:
    pages.log_in(page, site.user(name)["username"], site.password)
    pages.start_chat(page)


def test_a_new_user_signs_up_chats_renames_and_deletes(page: Any) -> None:
    shot = Shots("01-new-user")
    page.goto("/")
    shot(page, "start-page")
    pages.sign_up(page, "heron_walker", PASSWORD)
    shot(page, "conversation-list-empty")

    pages.new_conversation(page)
    assert (
        "AI assistant" in page.locator(".message-assistant .badge").first.inner_text()
    )
    shot(page, "chat-welcome")

    last = pages.send_and_wait(page, SAMSUNG)
    assert "Where do your steps come from?" in last.inner_text()
    assert page.evaluate("document.activeElement.id") == "id_text"
    shot(page, "chat-first-reply")

    page.get_by_role("button", name="Samsung Health").focus()
    before = pages.assistant_count(page)
    page.keyboard.press("Enter")
    answer = pages.wait_for_reply(page, before).inner_text()
    assert "Samsung Health" in answer or "Health Connect" in answer
    shot(page, "chat-quick-reply-answer")

    pages.send_and_wait(page, f"still nothing, you can e-mail me at {CANARY_EMAIL}")
    notice = page.locator(".message-user").last.inner_text()
    assert "We removed 1 e-mail address before saving your message" in notice
    assert CANARY_EMAIL not in page.content()
    shot(page, "chat-redaction-notice")

    page.set_viewport_size({"width": 375, "height": 812})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "chat-phone-375px")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("link", name="All conversations").click()
    page.get_by_role("link", name="Rename").first.click()
    page.get_by_label("New name").fill("Samsung sync")
    page.get_by_role("button", name="Save name").click()
    page.wait_for_url("**/conversations/")
    assert page.get_by_role("link", name="Samsung sync", exact=True).is_visible()
    shot(page, "conversation-renamed")

    page.get_by_role("link", name="Delete Samsung sync").click()
    shot(page, "delete-confirmation")
    page.get_by_role("button", name="Delete permanently").click()
    page.wait_for_url("**/conversations/")
    assert page.get_by_role("link", name="Samsung sync", exact=True).count() == 0
    shot(page, "conversation-deleted")

    assert page.problems == []


def test_the_chat_works_without_javascript(new_page: Any) -> None:
    page = new_page(java_script_enabled=False, viewport={"width": 375, "height": 812})
    pages.sign_up(page, "no_script_walker", PASSWORD)
    pages.new_conversation(page)

    page.get_by_label("Your message").fill(SAMSUNG)
    page.get_by_role("button", name="Send").click()

    page.wait_for_url("**/conversations/*/#latest")
    assert "Where do your steps come from?" in page.content()
    Shots("02-no-javascript")(page, "phone-reply")


def test_rule_answers_and_their_quick_replies_work_from_the_keyboard(
    page: Any, site: Site
) -> None:
    shot = Shots("03-rules-keyboard")
    open_chat_as(page, site, "rules")

    first = pages.send_and_wait(page, SAMSUNG)
    assert "Where do your steps come from?" in first.inner_text()
    shot(page, "rule-reply-with-choices")
    for _ in range(12):  # back from the composer to the choice, as a keyboard user
        if page.evaluate("document.activeElement.textContent") == "Samsung Health":
            break
        page.keyboard.press("Shift+Tab")
    before = pages.assistant_count(page)
    page.keyboard.press("Enter")
    second = pages.wait_for_reply(page, before)
    shot(page, "quick-reply-answer")

    assert page.evaluate("document.activeElement.id") == "id_text"
    assert "Samsung Health" in second.inner_text() or "Health Connect" in (
        second.inner_text()
    )
    ids = [
        first.get_attribute("data-message-id"),
        second.get_attribute("data-message-id"),
    ]
    assert [stored(site, i)[0] for i in ids] == ["rules", "rules"]
    assert site.llm.calls == 0
    assert page.problems == []


def test_an_llm_reply_streams_into_the_page_before_it_is_complete(
    page: Any, site: Site
) -> None:
    shot = Shots("04-llm-stream")
    site.llm.set_default(Fault(content=LLM_REPLY, chunks=10, chunk_delay=0.3))
    open_chat_as(page, site, "stream")
    pages.watch_stream(page)
    before = pages.assistant_count(page)

    pages.type_and_send(page, LLM_TEXT)
    page.wait_for_function(
        "() => { const t = document.querySelector('.message-streaming .message-text');"
        " return !!t && t.textContent.length > 0; }"
    )
    shot(page, "partial-text-streaming")
    reply = pages.wait_for_reply(page, before)
    shot(page, "stream-complete")

    saw_streaming, states = pages.streamed_states(page)
    final = squash(reply.locator(".message-text").inner_text())
    assert saw_streaming is True
    assert final == squash(LLM_REPLY)
    assert any(
        squash(s) and final.startswith(squash(s)) and squash(s) != final for s in states
    ), states
    assert reply.locator(".badge").inner_text() == "AI assistant"
    assert FALLBACK_NOTICE not in reply.inner_text()
    assert stored(site, reply.get_attribute("data-message-id")) == ("llm", "complete")
    assert site.llm.requests[-1]["body"]["stream"] is True
    assert page.problems == []


def test_a_cut_stream_keeps_the_partial_reply_marked_incomplete(
    page: Any, site: Site
) -> None:
    shot = Shots("05-cut-stream")
    site.llm.set_default(Fault("cut_stream", content=LLM_REPLY, chunks=8))
    open_chat_as(page, site, "cut")

    pages.type_and_send(page, LLM_TEXT)
    page.wait_for_selector(".message-incomplete")
    status = pages.wait_for_notice(page, "The reply was interrupted")
    shot(page, "partial-reply-and-notice")
    page.reload()
    shot(page, "after-reload")

    kept = page.locator(".message-assistant").last
    assert "The reply was interrupted. Please try again." in status
    assert "message-incomplete" in (kept.get_attribute("class") or "")
    assert "First, open the step app once." in kept.inner_text()
    assert "look again" not in kept.inner_text()
    assert stored(site, kept.get_attribute("data-message-id"))[1] == "incomplete"


@pytest.mark.parametrize(
    "fault", [Fault("status", status=500), Fault("reset")], ids=["http-500", "reset"]
)
def test_the_rule_based_fallback_answers_with_a_notice_when_the_llm_fails(
    page: Any, site: Site, fault: Fault
) -> None:
    site.llm.set_default(fault)
    open_chat_as(page, site, "fallback")

    reply = pages.send_and_wait(page, LLM_TEXT)
    Shots(f"06-fallback-{fault.kind}")(page, "fallback-notice")

    assert FALLBACK_NOTICE in reply.locator(".message-note").inner_text()
    assert stored(site, reply.get_attribute("data-message-id"))[0] == "fallback"
    assert site.llm.calls == 3  # the first attempt and LLM_MAX_RETRIES (2) retries


def test_removed_identifiers_are_named_by_type_and_count_never_by_value(
    page: Any, site: Site
) -> None:
    shot = Shots("07-redaction")
    open_chat_as(page, site, "redact")

    pages.send_and_wait(
        page, f"steps missing again, mail {CANARY_EMAIL} or call me on {PHONE}"
    )
    shot(page, "redaction-notice")
    page.reload()
    shot(page, "redaction-notice-after-reload")

    notice = page.locator(".message-user").last.inner_text()
    assert (
        "We removed 1 e-mail address and 1 phone number before saving your message"
        in notice
    )
    assert CANARY_EMAIL not in page.content()
    assert PHONE not in page.content()


def test_a_fourth_message_within_a_minute_gets_a_rate_limit_notice(
    new_page: Any, site: Site, guarded_url: str
) -> None:
    shot = Shots("08-rate-limit")
    page = new_page(base_url=guarded_url)
    open_chat_as(page, site, "ratelimit")
    for _ in range(3):  # RATE_LIMIT_MESSAGES_PER_MINUTE on this server
        pages.send_and_wait(page, RULE_TEXT)

    pages.type_and_send(page, RULE_TEXT)
    status = pages.wait_for_notice(page, "You're sending messages too quickly")
    shot(page, "rate-limit-notice")

    assert re.search(r"try again in \d+ seconds?", status)
    assert page.locator(".message-user").count() == 3


def test_strict_mode_blocks_a_social_security_number_and_says_so(
    new_page: Any, site: Site, guarded_url: str
) -> None:
    page = new_page(base_url=guarded_url)
    open_chat_as(page, site, "strict")

    pages.type_and_send(page, f"my ssn is {CANARY_SSN} and my steps are missing")
    status = pages.wait_for_notice(page, "Your message was not sent")
    Shots("09-strict-mode")(page, "blocked-notice")

    assert "because it contained: Social Security number" in status
    assert page.locator(".message-user").count() == 0
    assert CANARY_SSN not in page.content()


def test_a_message_to_a_timed_out_conversation_continues_in_a_new_one(
    page: Any, site: Site
) -> None:
    shot = Shots("10-timed-out")
    open_chat_as(page, site, "timeout")
    pages.send_and_wait(page, RULE_TEXT)
    old_url = page.url
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)  # SESSION_TIMEOUT_HOURS
    closed = harness.manage(site.config, "cleanup_sessions", "--now", later.isoformat())
    assert int(closed.rsplit("closed=", 1)[1]) >= 1
    shot(page, "before-the-late-message")

    pages.type_and_send(page, SAMSUNG)
    page.wait_for_url(lambda url: url.split("#")[0] != old_url.split("#")[0])
    page.wait_for_selector("#continued-notice")
    shot(page, "successor-conversation")

    assert "Where do your steps come from?" in (
        page.locator(pages.ASSISTANT_DONE).last.inner_text()
    )
    assert SAMSUNG in page.locator(".message-user").last.inner_text()
    page.locator("#continued-notice a").click()
    page.wait_for_selector("#closed-notice")
    shot(page, "old-conversation-links-forward")
    assert page.url.split("#")[0] == old_url.split("#")[0]
    assert page.get_by_label("Your message").count() == 0
