"""The admin's and the compliance officer's walkthroughs in headless Chromium.

Issue 7's "done means" for the admin: sign in with a second factor, watch the
operations dashboard, force the LLM breaker open with a reason while a user (in
another browser context) gets the rule-based fallback, then reset it and see the next
answer come from the LLM again. Issue 6's for the compliance officer: sign in with a
second factor, filter the audit trail to one user, export it as CSV, verify the
chain, and read an incident's HIPAA deadlines. Both run against the production
server of tests/e2e/conftest.py; screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from bench.load import harness
from tests.chaos import api
from tests.e2e import pages
from tests.e2e.conftest import Site
from tests.e2e.pages import FALLBACK_NOTICE, Shots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LLM_TEXTS = (
    "What do you think about walking in the rain?",
    "Is it nicer to walk in the morning or in the evening?",
)
CANARY_EMAIL = "canary.patient@example.org"
USER_TEXT = f"my steps aren't syncing, write to {CANARY_EMAIL}"
CSV_HEADER = [
    "seq",
    "at",
    "actor_id",
    "system_principal",
    "action",
    "target_type",
    "target_id",
    "outcome",
    "client_ip",
    "request_id",
    "details",
    "prev_mac",
    "mac",
]
# Where a page may load from: itself, or inline data (the MFA QR code, icons).
RESOURCES_JS = """() => [...document.querySelectorAll(
  "script[src], link[href], img[src], iframe[src], image, use")]
  .map(e => e.src || e.href?.baseVal || e.href || "")"""


def source_of(site: Site, reply: Any) -> str:
    message_id = int(reply.get_attribute("data-message-id"))
    rows = site.rows("SELECT source FROM chat_message WHERE id = ?", (message_id,))
    return str(rows[0][0])


def breaker_action(page: Any, action: str, reason: str) -> str:
    """Apply an operator action on the breaker page; return the admin's message."""
    page.get_by_label("Action").select_option(action)
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_selector(".messagelist")
    return str(page.locator(".messagelist").inner_text())


def test_an_admin_forces_the_breaker_open_and_users_get_the_fallback_until_reset(
    new_page: Any, site: Site
) -> None:
    from ops.sampling import DASHBOARD_SERIES

    shot = Shots("11-admin-breaker")
    admin = site.staff("admin")
    console = new_page()
    user = new_page()
    loaded: list[str] = []
    console.on("request", lambda request: loaded.append(request.url))
    pages.admin_log_in(console, admin["username"], site.password, admin["key"])
    shot(console, "admin-home-after-mfa")
    harness.manage(site.config, "runjobs", "--once", "--jobs", "sample_metrics")

    console.goto("/admin/ops/dashboard/")
    shot(console, "dashboard")
    charts = console.locator("svg.ops-chart[role=img]")
    assert charts.count() == len(DASHBOARD_SERIES)
    assert console.locator("svg.ops-chart :is(circle, polyline)").count() >= 1
    assert "sample_metrics" in console.locator("body").inner_text()

    console.get_by_role("link", name="controls", exact=True).click()
    forced = breaker_action(console, "force_open", "incident_drill")
    shot(console, "breaker-forced-open")
    assert "now forced_open" in forced

    pages.log_in(user, site.user("patient")["username"], site.password)
    pages.start_chat(user)
    calls = site.llm.calls
    fallback = pages.send_and_wait(user, LLM_TEXTS[0])
    shot(user, "user-gets-the-fallback")
    assert FALLBACK_NOTICE in fallback.inner_text()
    assert source_of(site, fallback) == "fallback"
    assert site.llm.calls == calls

    reset = breaker_action(console, "reset", "drill_over")
    shot(console, "breaker-reset")
    assert "now closed" in reset
    transitions = console.locator("table").last.inner_text()
    assert "incident_drill" in transitions
    assert "drill_over" in transitions

    answered = pages.send_and_wait(user, LLM_TEXTS[1])
    shot(user, "user-gets-the-llm-again")
    assert FALLBACK_NOTICE not in answered.inner_text()
    assert source_of(site, answered) == "llm"
    assert site.llm.calls == calls + 1
    assert all(url.startswith((site.base_url, "data:")) for url in loaded), loaded
    assert site.rows(
        "SELECT COUNT(*) FROM compliance_auditevent WHERE action = ? AND actor_id = ?",
        ("breaker_action", admin["id"]),
    ) == [(2,)]
    assert pages.admin_problems(console) == []
    assert user.problems == []


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_a_compliance_officer_reviews_a_users_trail_and_an_incidents_deadlines(
    new_page: Any, site: Site, tmp_path: Path
) -> None:
    shot = Shots("12-compliance-officer")
    audited = site.user("audited")
    with api.client(site.base_url, audited["token"]) as http:
        conversation = api.start_conversation(http)
        assert api.post_message(http, conversation, USER_TEXT).status_code == 201
    officer = site.staff("officer")
    page = new_page()
    pages.admin_log_in(page, officer["username"], site.password, officer["key"])
    shot(page, "admin-home-after-mfa")

    page.goto("/admin/compliance/auditevent/")
    actor_form = page.locator("form.compliance-input-filter").filter(
        has=page.get_by_label("User id")
    )
    actor_form.get_by_label("User id").fill(str(audited["id"]))
    actor_form.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"actor_id=[0-9]+"))
    shot(page, "trail-of-one-user")
    actors = page.locator("#result_list td.field-actor_id").all_inner_texts()
    actions = page.locator("#result_list td.field-action").all_inner_texts()
    assert actors
    assert set(actors) == {str(audited["id"])}
    assert {"Conversation created", "Message sent"} <= set(actions)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    rows = csv_rows(saved)
    assert download.suggested_filename == "audit-trail.csv"
    assert rows[0] == CSV_HEADER
    assert {row[2] for row in rows[1:]} == {str(audited["id"])}
    assert {"conversation_create", "message_sent"} <= {row[4] for row in rows[1:]}
    exported = saved.read_text("utf-8")
    assert CANARY_EMAIL not in exported
    assert "syncing" not in exported

    page.get_by_role("button", name="Verify chain").click()
    page.wait_for_selector(".messagelist")
    shot(page, "chain-verified")
    assert "Audit chain intact" in page.locator(".messagelist").inner_text()

    incident = site.accounts["incident"]
    page.goto("/admin/compliance/incident/")
    shot(page, "incident-list-with-deadlines")
    page.get_by_role("link", name=incident["reference"]).click()
    shot(page, "incident-hipaa-deadlines")
    body = page.locator("#content").inner_text()
    due = dt.date.fromisoformat(incident["detected"]) + dt.timedelta(days=60)
    for notice in ("affected individuals", "HHS (Secretary)", "prominent media"):
        assert re.search(rf"Notice to {re.escape(notice)}.*due {due}", body), notice
    assert page.locator("input[name=_save]").count() == 0
    assert pages.admin_problems(page) == []
