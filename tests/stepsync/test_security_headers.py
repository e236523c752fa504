"""Production-grade response headers on pages and the API."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def response(client: Client, db: None):  # type: ignore[no-untyped-def]
    return client.get("/", secure=True)


def test_start_page_is_served(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    assert b"AI assistant" in response.content


def test_hsts_is_a_year_with_subdomains(response) -> None:  # type: ignore[no-untyped-def]
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "includeSubDomains" in response["Strict-Transport-Security"]


@pytest.mark.parametrize(
    "directive",
    [
        "default-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ],
)
def test_csp_has_the_required_directive(response, directive: str) -> None:  # type: ignore[no-untyped-def]
    assert directive in response["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ],
)
def test_security_header_is_set(response, header: str, value: str) -> None:  # type: ignore[no-untyped-def]
    assert response[header] == value


def test_every_response_carries_a_request_id(response) -> None:  # type: ignore[no-untyped-def]
    assert len(response["X-Request-ID"]) >= 8


@pytest.mark.django_db
def test_api_responses_are_not_cached(client: Client) -> None:
    response = client.get("/api/does-not-exist/")
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_api_not_found_is_json_with_a_request_id(client: Client) -> None:
    response = client.get("/api/does-not-exist/")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert response.json()["request_id"] == response["X-Request-ID"]


@pytest.mark.django_db
def test_page_not_found_is_a_generic_html_page(client: Client) -> None:
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"Traceback" not in response.content
    assert response["Content-Type"].startswith("text/html")


def test_secure_cookie_names_use_the_host_prefix() -> None:
    from django.conf import settings

    if settings.SECURE_COOKIES:
        assert settings.SESSION_COOKIE_NAME.startswith("__Host-")
        assert settings.CSRF_COOKIE_NAME.startswith("__Host-")
    assert settings.SESSION_COOKIE_HTTPONLY is True


@pytest.fixture(scope="module")
def production_login(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Log in over HTTPS in a subprocess running the production settings."""
    folder = tmp_path_factory.mktemp("production")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "stepsync.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "chat.example.org",
        "SECURE_COOKIES": "true",
        "DATABASE_NAME": str(folder / "app.db"),
        "DATABASE_ENCRYPTION_KEY": secrets.token_hex(32),
        "MFA_REQUIRED_FOR_STAFF": "true",
    }
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "tests.stepsync.production_probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
@pytest.mark.parametrize("cookie", ["csrf", "session"])
def test_production_cookies_are_host_prefixed_secure_httponly_and_samesite(
    production_login: dict[str, Any], cookie: str
) -> None:
    morsel = production_login[cookie]

    assert morsel["name"].startswith("__Host-")
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert morsel["domain"] == ""


@pytest.mark.slow
def test_pages_of_a_logged_in_user_are_not_cached(
    production_login: dict[str, Any],
) -> None:
    assert production_login["login_status"] == 302
    assert production_login["page_status"] == 200
    assert "no-store" in production_login["page_cache_control"]


@pytest.mark.django_db
def test_static_files_are_served_by_whitenoise(client: Client) -> None:
    response = client.get("/static/css/app.css")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert b"".join(response.streaming_content)
