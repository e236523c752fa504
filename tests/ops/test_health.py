"""Health endpoints: access levels, headers, and the status under each database fault."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from ops.health import database_status
from tests.ops.conftest import database_file, run_python, subprocess_env


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
    assert body["llm_configured"] in (True, False)


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
def test_health_sets_no_cookie_and_no_store(
    client: Client, staff_member: object
) -> None:
    client.force_login(staff_member)
    client.get("/")

    response = client.get("/health/")

    assert response.cookies == {}
    assert "Set-Cookie" not in str(response.serialize_headers())
    assert response["Cache-Control"] == "no-store"


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
from django.db import OperationalError, connection
from django.test import Client
filled = "no"
try:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS filler (blob BLOB)")
        for _ in range(100000):
            cursor.execute("INSERT INTO filler VALUES (randomblob(65536))")
except OperationalError as exc:
    filled = "full" if "full" in str(exc) else type(exc).__name__
auth = {"HTTP_AUTHORIZATION": "Bearer " + settings.HEALTH_CHECK_TOKEN}
response = Client().get("/health/", **auth)
print(json.dumps({"filled": filled, "code": response.status_code, **response.json()}))
"""


@pytest.mark.sqlcipher_only
@pytest.mark.django_db(transaction=True)
def test_full_disk_reports_degraded_disk_full(tmp_path: Path) -> None:
    mount = tmp_path / "tiny"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        connection.close()
        shutil.copyfile(database_file(), mount / "db.sqlite")
        env = subprocess_env(DATABASE_NAME=str(mount / "db.sqlite"))
        env["HEALTH_MIN_FREE_DISK_MB"] = "1"
        result = run_python(DISK_FULL_SCRIPT, env=env)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)

    assert result.returncode == 0, result.stderr[-2000:]
    body = json.loads(result.stdout.strip().splitlines()[-1])
    assert body["filled"] == "full"
    assert body["code"] == 200
    assert body["status"] == "degraded"
    assert body["db"] == "disk_full"
