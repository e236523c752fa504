"""Health endpoints: access levels, headers, and the status under each database fault."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from ops.health import database_status
from tests.ops.conftest import database_file, run_python, subprocess_env
from tests.ops.scratchdb import migrated_copy


def test_liveness_answers_without_the_database(client: Client) -> None:
    response = client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


@pytest.mark.django_db
def test_anonymous_caller_gets_only_the_status(client: Client) -> None:
    response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


@pytest.mark.django_db
def test_bearer_token_gets_the_details(client: Client, bearer: dict) -> None:
    body = client.get("/health/", **bearer).json()

    assert body["status"] == "healthy"
    assert body["db"] == "ok"
    assert {"timestamp", "database", "circuit_breaker", "memory"} <= set(body)
    assert {"encrypted", "size_bytes", "sessions", "messages"} <= set(body["database"])
    assert "last_backup_age_seconds" in body
    assert "database_key_age_days" in body


@pytest.mark.django_db
def test_details_say_the_llm_is_configured_when_a_key_is_set(
    client: Client, bearer: dict, settings: object
) -> None:
    settings.GROQ_API_KEY = "gsk-test-not-a-real-key"

    body = client.get("/health/", **bearer).json()

    assert body["llm_configured"] is True


@pytest.mark.django_db
def test_details_say_the_llm_is_not_configured_without_a_key(
    client: Client, bearer: dict, settings: object
) -> None:
    settings.GROQ_API_KEY = ""

    body = client.get("/health/", **bearer).json()

    assert body["llm_configured"] is False


@pytest.mark.django_db
def test_wrong_bearer_token_gets_only_the_status(client: Client) -> None:
    body = client.get("/health/", HTTP_AUTHORIZATION="Bearer nope").json()

    assert body == {"status": "healthy"}


@pytest.mark.django_db
def test_staff_session_gets_the_details(client: Client, staff_member: object) -> None:
    client.force_login(staff_member)

    body = client.get("/health/").json()

    assert "database" in body


@pytest.mark.django_db
def test_patient_session_gets_only_the_status(client: Client, patient: object) -> None:
    client.force_login(patient)

    body = client.get("/health/").json()

    assert set(body) == {"status"}


@pytest.mark.django_db
def test_health_sets_no_cookie_and_no_store(client: Client) -> None:
    # An unknown session cookie makes Django's session middleware expire it.
    client.cookies[django_settings.SESSION_COOKIE_NAME] = "x"

    response = client.get("/health/")

    assert response.cookies == {}
    assert "Set-Cookie" not in str(response.serialize_headers())
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_a_probe_with_a_stale_session_cookie_sets_no_cookie(client: Client) -> None:
    client.cookies[django_settings.SESSION_COOKIE_NAME] = "x"

    responses = [client.get(path) for path in ("/health/", "/health/live", "/metrics")]

    assert [r.cookies for r in responses] == [{}, {}, {}]


def _stale_staff_session(client: Client, user: object, *, idle_minutes: float) -> None:
    from chat.middleware import LAST_SEEN_KEY, LOGIN_AT_KEY

    client.force_login(user)
    session = client.session
    then = timezone.now().timestamp() - idle_minutes * 60
    session[LOGIN_AT_KEY] = then
    session[LAST_SEEN_KEY] = then
    session.save()


@pytest.mark.django_db
def test_a_probe_never_refreshes_the_sessions_last_seen_time(
    client: Client, staff_member: object
) -> None:
    from chat.middleware import LAST_SEEN_KEY

    _stale_staff_session(client, staff_member, idle_minutes=5)
    before = client.session[LAST_SEEN_KEY]

    client.get("/health/")
    client.get("/health/ready")
    client.get("/metrics")

    assert client.session[LAST_SEEN_KEY] == before


@pytest.mark.django_db
def test_a_probe_with_an_expired_session_is_not_redirected_or_audited(
    client: Client, staff_member: object, settings: object
) -> None:
    from compliance.models import AuditEvent

    _stale_staff_session(
        client, staff_member, idle_minutes=settings.SESSION_IDLE_TIMEOUT_MINUTES + 1
    )
    before = AuditEvent.objects.count()

    response = client.get("/health/")
    metrics = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")

    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}
    assert metrics.status_code == 401
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_an_expired_session_still_expires_on_a_normal_page(
    client: Client, staff_member: object, settings: object
) -> None:
    _stale_staff_session(
        client, staff_member, idle_minutes=settings.SESSION_IDLE_TIMEOUT_MINUTES + 1
    )

    response = client.get("/")

    assert response.status_code == 302
    assert "/login/" in response["Location"]


@pytest.mark.django_db
def test_health_rejects_post(client: Client) -> None:
    assert client.post("/health/").status_code == 405


@pytest.mark.django_db
def test_health_writes_no_audit_rows(client: Client, bearer: dict) -> None:
    from compliance.models import AuditEvent

    before = AuditEvent.objects.count()
    client.get("/health/", **bearer)
    client.get("/health/")
    client.get("/health/ready")

    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_readiness_is_ready_with_migrations_applied(client: Client) -> None:
    response = client.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


@pytest.mark.sqlcipher_only
@pytest.mark.django_db(transaction=True)
def test_held_write_lock_reports_degraded_locked(
    client: Client, bearer: dict, settings: object
) -> None:
    from ops.cipherfile import open_file
    from stepsync.secrets import DATABASE_KEY, read_secret

    settings.HEALTH_DB_BUSY_TIMEOUT_MS = 50
    holder = open_file(database_file(), read_secret(DATABASE_KEY))
    holder.execute("BEGIN IMMEDIATE")
    try:
        response = client.get("/health/", **bearer)
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["db"] == "locked"


def _with_key_env(monkeypatch: pytest.MonkeyPatch, **env: str | None) -> None:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    connection.close()


@pytest.mark.sqlcipher_only
@pytest.mark.django_db(transaction=True)
def test_wrong_key_reports_down_key_invalid(
    client: Client, bearer: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_key_env(monkeypatch, DATABASE_ENCRYPTION_KEY=secrets.token_hex(32))
    try:
        response = client.get("/health/", **bearer)
        anonymous = client.get("/health/")
    finally:
        monkeypatch.undo()
        connection.close()

    assert response.status_code == 503
    assert response.json()["status"] == "down"
    assert response.json()["db"] == "key_invalid"
    assert anonymous.json() == {"status": "down"}


@pytest.mark.sqlcipher_only
@pytest.mark.django_db(transaction=True)
def test_missing_key_reports_down_unavailable(
    client: Client, bearer: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _with_key_env(
        monkeypatch,
        DATABASE_ENCRYPTION_KEY=None,
        DATABASE_KEY_FILE=str(tmp_path / "absent.key"),
    )
    try:
        response = client.get("/health/", **bearer)
    finally:
        monkeypatch.undo()
        connection.close()

    assert response.status_code == 503
    assert response.json()["db"] == "unavailable"
    assert "Traceback" not in response.content.decode()


@pytest.mark.sqlcipher_only
@pytest.mark.django_db(transaction=True)
def test_readiness_fails_with_a_wrong_key(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_key_env(monkeypatch, DATABASE_ENCRYPTION_KEY=secrets.token_hex(32))
    try:
        response = client.get("/health/ready")
    finally:
        monkeypatch.undo()
        connection.close()

    assert response.status_code == 503
    assert response.json() == {"status": "not_ready"}


@pytest.mark.django_db
def test_database_status_is_ok_on_a_healthy_database() -> None:
    assert database_status() == "ok"


DISK_FULL_SCRIPT = """
import json, django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection
from django.db.backends.signals import connection_created
from django.test import Client

user = get_user_model().objects.create_user(username="disk_full_probe", password="x-long-password-1")
client = Client()
client.force_login(user)
client.get("/api/conversations/")
with connection.cursor() as cursor:
    cursor.execute("PRAGMA page_count")
    cap = cursor.fetchone()[0] + 8
connection.close()


def cap_the_file(sender, connection, **kwargs):
    # SQLite's own size cap: past it every write fails with SQLITE_FULL.
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA max_page_count = {cap}")


connection_created.connect(cap_the_file)
statuses = []
for _ in range(500):
    response = client.post("/api/conversations/", {}, content_type="application/json")
    statuses.append(response.status_code)
    if response.status_code != 201:
        break
try:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE filler (b BLOB)")
        cursor.execute("INSERT INTO filler VALUES (randomblob(65536))")
    direct = "written"
except OperationalError as exc:
    direct = str(exc)
auth = {"HTTP_AUTHORIZATION": "Bearer " + settings.HEALTH_CHECK_TOKEN}
health = Client().get("/health/", **auth)
print(json.dumps({"direct": direct, "statuses": statuses, "health": health.status_code, **health.json()}))
"""


@pytest.mark.sqlcipher_only
@pytest.mark.django_db
def test_a_full_disk_gives_503_on_writes_and_degraded_health(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    migrated_copy(database_file(), os.environ["DATABASE_ENCRYPTION_KEY"], db)
    env = subprocess_env(DATABASE_NAME=str(db), HEALTH_MIN_FREE_DISK_MB="1")

    result = run_python(DISK_FULL_SCRIPT, env=env, timeout=240)

    assert result.returncode == 0, result.stderr[-2000:]
    body = json.loads(result.stdout.strip().splitlines()[-1])
    assert body["direct"] == "database or disk is full"
    assert body["statuses"][-1] == 503
    assert 500 not in body["statuses"]
    assert body["health"] == 200
    assert body["status"] == "degraded"
    assert body["db"] == "disk_full"
