"""Shared fixtures: personas, real-service availability, and the network guard."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

from tests import factories

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _require(name: str) -> bool:
    return os.environ.get(name, "") == "1"


@pytest.fixture(autouse=True)
def _no_network_beyond_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection to a non-loopback address fails the test that makes it."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in LOOPBACK:
            raise RuntimeError(
                "network access beyond 127.0.0.1 is not allowed in tests"
            )
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


def service_available(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis URL on this machine (db 15); skips plainly when absent, fails in CI."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    if not service_available("127.0.0.1", 6379):
        if _require("REQUIRE_REDIS"):
            pytest.fail("REQUIRE_REDIS=1 but no Redis answers on 127.0.0.1:6379")
        pytest.skip("Redis is not running on 127.0.0.1:6379: Redis tests skipped")
    return url


@pytest.fixture
def patient(db: None) -> Any:
    return factories.make_user(username="patient")


@pytest.fixture
def other_patient(db: None) -> Any:
    return factories.make_user(username="other_patient")


@pytest.fixture
def staff_member(db: None) -> Any:
    return factories.make_user(username="staff_member", is_staff=True)


def database_engine() -> str:
    from django.conf import settings

    return str(settings.DATABASES["default"]["ENGINE"])


def pytest_runtest_setup(item: pytest.Item) -> None:
    sqlcipher_only = item.get_closest_marker("sqlcipher_only")
    postgres_only = item.get_closest_marker("postgres_only")
    if not (sqlcipher_only or postgres_only):
        return  # pure tests (e.g. the sanitizer) must not need Django settings
    engine = database_engine()
    if sqlcipher_only and engine != "stepsync.db.sqlcipher":
        pytest.skip("runs on the SQLCipher backend only")
    if postgres_only and "postgresql" not in engine:
        pytest.skip("runs on PostgreSQL only")


# --- Compliance: audit rows, MFA-verified admin clients ------------------------


def _flush_with_audit_window(original: Any) -> Any:
    """Django's flush between transactional tests deletes audit rows, which the
    append-only triggers refuse; the flush alone runs inside the prune window."""

    def execute_sql_flush(self: Any, sql_list: list[str]) -> Any:
        from compliance.appendonly import audit_prune_window

        with audit_prune_window(before=None, using=self.connection.alias):
            return original(self, sql_list)

    return execute_sql_flush


@pytest.fixture(scope="session", autouse=True)
def _audit_rows_flushable() -> Any:
    from django.db.backends.base.operations import BaseDatabaseOperations

    original = BaseDatabaseOperations.execute_sql_flush
    BaseDatabaseOperations.execute_sql_flush = _flush_with_audit_window(original)
    yield
    BaseDatabaseOperations.execute_sql_flush = original


def mfa_verified_client(user: Any) -> Any:
    """A test client logged in as ``user`` with a confirmed TOTP device verified."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=user, name="admin", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def mfa_admin_client(db: None) -> Any:
    """A superuser's client that has passed MFA (the admin requires it for staff)."""
    user = factories.make_user(username="mfa_admin", is_staff=True, is_superuser=True)
    return mfa_verified_client(user)


@pytest.fixture
def compliance_officer(db: None) -> Any:
    from compliance.roles import roles_setup

    user = factories.make_user(username="compliance_officer", is_staff=True)
    user.groups.add(roles_setup())
    return user


@pytest.fixture
def officer_client(compliance_officer: Any) -> Any:
    """A compliance officer's client (staff, in the officers group), MFA-verified."""
    return mfa_verified_client(compliance_officer)
