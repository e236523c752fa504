"""Ops admin: breaker controls (audited, effective across processes) and the dashboard."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.ops.conftest import run_python, subprocess_env

BREAKER_URL = "/admin/ops/breakercontrol/"
DASHBOARD_URL = "/admin/ops/dashboard/"

SNAPSHOT = """
import django
django.setup()
from chat.breaker import breaker_snapshot
print(breaker_snapshot().state)
"""

RESET_ELSEWHERE = """
import django
django.setup()
from chat.breaker import breaker_reset
breaker_reset(actor=None, reason="reset by another process")
"""


@pytest.mark.django_db
def test_breaker_page_shows_the_state(mfa_admin_client: Any) -> None:
    response = mfa_admin_client.get(BREAKER_URL)

    assert response.status_code == 200
    assert b"Consecutive failures" in response.content
    assert b"closed" in response.content


@pytest.mark.django_db
def test_admin_index_links_breaker_and_dashboard(mfa_admin_client: Any) -> None:
    content = mfa_admin_client.get("/admin/").content

    assert BREAKER_URL.encode() in content
    assert DASHBOARD_URL.encode() in content


@pytest.mark.django_db
def test_breaker_action_needs_a_reason(mfa_admin_client: Any) -> None:
    from chat.breaker import breaker_snapshot

    response = mfa_admin_client.post(
        BREAKER_URL, {"action": "force_open", "reason": ""}
    )

    assert response.status_code == 200
    assert breaker_snapshot().state == "closed"


@pytest.mark.django_db
def test_force_open_is_audited(mfa_admin_client: Any) -> None:
    from chat.breaker import breaker_snapshot
    from compliance.models import AuditAction, AuditEvent

    response = mfa_admin_client.post(
        BREAKER_URL, {"action": "force_open", "reason": "provider incident"}
    )

    assert response.status_code == 302
    assert breaker_snapshot().state == "forced_open"
    event = AuditEvent.objects.filter(action=AuditAction.BREAKER_ACTION).latest("seq")
    assert event.actor is not None
    assert event.actor.username == "mfa_admin"


@pytest.mark.parametrize(
    ("action", "state"),
    [("reset", "closed"), ("force_close", "closed"), ("disable", "disabled")],
)
@pytest.mark.django_db
def test_each_breaker_action_sets_its_state(
    mfa_admin_client: Any, action: str, state: str
) -> None:
    from chat.breaker import breaker_snapshot

    mfa_admin_client.post(BREAKER_URL, {"action": "force_open", "reason": "drill"})
    mfa_admin_client.post(BREAKER_URL, {"action": action, "reason": "drill over"})

    assert breaker_snapshot().state == state


@pytest.mark.django_db
def test_staff_without_permission_cannot_act(staff_member: Any) -> None:
    from tests.conftest import mfa_verified_client

    client = mfa_verified_client(staff_member)

    response = client.post(BREAKER_URL, {"action": "force_open", "reason": "x" * 5})

    assert response.status_code == 403


@pytest.mark.django_db
def test_patient_is_sent_to_login(client: Any, patient: Any) -> None:
    client.force_login(patient)

    response = client.get(BREAKER_URL)

    assert response.status_code == 302
    assert "/login/" in response["Location"]


@pytest.mark.django_db(transaction=True)
def test_forcing_open_in_the_admin_is_seen_by_another_process(
    mfa_admin_client: Any,
) -> None:
    mfa_admin_client.post(BREAKER_URL, {"action": "force_open", "reason": "incident"})

    seen = run_python(SNAPSHOT, env=subprocess_env())

    assert seen.returncode == 0, seen.stderr[-1500:]
    assert seen.stdout.strip().splitlines()[-1] == "forced_open"


@pytest.mark.django_db(transaction=True)
def test_a_reset_in_another_process_is_seen_here(mfa_admin_client: Any) -> None:
    from chat.breaker import breaker_snapshot

    mfa_admin_client.post(BREAKER_URL, {"action": "force_open", "reason": "incident"})

    done = run_python(RESET_ELSEWHERE, env=subprocess_env())

    assert done.returncode == 0, done.stderr[-1500:]
    assert breaker_snapshot().state == "closed"


@pytest.mark.django_db
def test_dashboard_draws_svg_charts_from_samples(mfa_admin_client: Any) -> None:
    from ops.models import MetricSample

    now = timezone.now()
    for minutes in range(0, 60, 10):
        MetricSample.objects.create(
            series="messages_per_min",
            value=minutes,
            created_at=now - timedelta(minutes=minutes),
        )

    response = mfa_admin_client.get(DASHBOARD_URL)

    assert response.status_code == 200
    assert response.content.count(b"<svg") >= 5
    assert b"<polyline" in response.content
    charts = response.content.split(b'class="ops-charts"')[1].split(b"</div>\n</div>")[
        0
    ]
    assert b"<script" not in charts


@pytest.mark.django_db
def test_dashboard_loads_nothing_from_another_host(mfa_admin_client: Any) -> None:
    import re

    html = mfa_admin_client.get(DASHBOARD_URL).content.decode()

    external = re.findall(
        r"""(?:src|href|action|srcset)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I
    )
    assert external == []
    assert "@import" not in html


@pytest.mark.django_db
def test_admin_pages_declare_an_inline_icon_so_browsers_fetch_no_favicon(
    client: Any,
) -> None:
    html = client.get(reverse("admin:login")).content.decode()

    assert '<link rel="icon" href="data:,">' in html
