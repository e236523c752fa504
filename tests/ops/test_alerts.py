"""Alert rules: each fires and resolves (injected clock); storage, de-dup, notification."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from ops.alerts import alerts_evaluate, load_rules
from ops.models import Alert
from tests.ops.records import llm_calls


def _open(rule: str) -> bool:
    return Alert.objects.filter(rule=rule, resolved_at__isnull=True).exists()


def _run(rule: str, now: Any) -> Any:
    cache.clear()
    return alerts_evaluate(now=now, only={rule})


def test_rules_file_names_only_known_checks() -> None:
    names = {rule.name for rule in load_rules()}

    assert {
        "db_encryption_disabled",
        "phi_in_logs",
        "phi_log_scan_idle",
        "integrity_failed",
        "breaker_open_long",
        "capacity_critical",
        "error_rate_high",
        "latency_p95_high",
        "llm_rate_limited",
        "capacity_warning",
        "db_size_high",
        "key_old",
        "backup_stale",
        "incident_deadline_due",
    } == names


@pytest.mark.sqlcipher_only
@pytest.mark.django_db
def test_encryption_disabled_fires_and_resolves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ops import cipherfile

    now = timezone.now()
    monkeypatch.setattr(cipherfile, "header_is_plaintext", lambda path: True)
    first = _run("db_encryption_disabled", now)
    monkeypatch.undo()
    second = _run("db_encryption_disabled", now + timedelta(minutes=1))

    assert first.fired == ["db_encryption_disabled"]
    assert second.resolved == ["db_encryption_disabled"]


@pytest.mark.django_db
def test_phi_in_logs_fires_and_resolves(settings: Any, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("ok line\nuser ssn 123-45-6789 leaked\n")
    settings.LOG_FILES = [str(log)]
    now = timezone.now()

    fired = _run("phi_in_logs", now)
    log.write_text("ok line\n")
    resolved = _run("phi_in_logs", now + timedelta(minutes=1))

    assert fired.fired == ["phi_in_logs"]
    assert resolved.resolved == ["phi_in_logs"]


@pytest.mark.django_db
def test_breaker_open_over_five_minutes_fires_and_resolves(staff_member: Any) -> None:
    from chat.breaker import breaker_force_open, breaker_reset

    now = timezone.now()
    breaker_force_open(actor=staff_member, reason="incident drill")
    early = _run("breaker_open_long", now + timedelta(minutes=2))
    late = _run("breaker_open_long", now + timedelta(minutes=6))
    breaker_reset(actor=staff_member, reason="drill over")
    after = _run("breaker_open_long", now + timedelta(minutes=7))

    assert early.fired == []
    assert late.fired == ["breaker_open_long"]
    assert after.resolved == ["breaker_open_long"]


@pytest.mark.django_db
def test_capacity_rules_fire_and_resolve(settings: Any, patient: Any) -> None:
    from chat.models import Conversation

    settings.MAX_ACTIVE_SESSIONS = 10
    now = timezone.now()
    for i in range(10):
        Conversation.objects.create(user=patient, title=f"c{i}")

    fired_warning = _run("capacity_warning", now)
    fired_critical = _run("capacity_critical", now)
    Conversation.objects.all().delete()
    resolved_critical = _run("capacity_critical", now + timedelta(minutes=1))
    resolved_warning = _run("capacity_warning", now + timedelta(minutes=1))

    assert fired_warning.fired == ["capacity_warning"]
    assert fired_critical.fired == ["capacity_critical"]
    assert resolved_critical.resolved == ["capacity_critical"]
    assert resolved_warning.resolved == ["capacity_warning"]


@pytest.mark.django_db
def test_capacity_warning_alone_fires_between_eighty_and_ninety_percent(
    settings: Any, patient: Any
) -> None:
    from chat.models import Conversation

    settings.MAX_ACTIVE_SESSIONS = 100
    now = timezone.now()
    for i in range(85):
        Conversation.objects.create(user=patient, title=f"c{i}")

    warning = _run("capacity_warning", now)
    critical = _run("capacity_critical", now)

    assert warning.fired == ["capacity_warning"]
    assert critical.fired == []


@pytest.mark.django_db
def test_llm_rate_limit_hit_fires_and_resolves() -> None:
    now = timezone.now()
    llm_calls(now - timedelta(minutes=1), ("rate_limited", 0))

    fired = _run("llm_rate_limited", now)
    resolved = _run("llm_rate_limited", now + timedelta(minutes=20))

    assert fired.fired == ["llm_rate_limited"]
    assert resolved.resolved == ["llm_rate_limited"]


@pytest.mark.django_db
def test_a_provider_429_counts_as_a_rate_limit_hit() -> None:
    from chat.models import LLMCall

    now = timezone.now()
    LLMCall.objects.create(
        outcome="rate_limited",
        upstream_calls=3,
        status_code=429,
        latency_ms=900,
        created_at=now - timedelta(minutes=1),
    )

    assert _run("llm_rate_limited", now).fired == ["llm_rate_limited"]


@pytest.mark.django_db
def test_database_size_over_eighty_percent_fires_and_resolves(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ops import selectors

    settings.DATABASE_MAX_SIZE_MB = 100
    now = timezone.now()
    monkeypatch.setattr(selectors, "database_size_bytes", lambda: 90 * 1024 * 1024)
    fired = _run("db_size_high", now)
    monkeypatch.setattr(selectors, "database_size_bytes", lambda: 10 * 1024 * 1024)
    resolved = _run("db_size_high", now + timedelta(minutes=1))

    assert fired.fired == ["db_size_high"]
    assert resolved.resolved == ["db_size_high"]


@pytest.mark.sqlcipher_only
@pytest.mark.django_db
def test_key_older_than_ninety_days_fires_and_resolves_after_rotation() -> None:
    from ops.cipherfile import key_fingerprint
    from ops.models import KeyRecord
    from stepsync.secrets import DATABASE_KEY, read_secret

    now = timezone.now()
    record = KeyRecord.objects.create(
        key_id="initial",
        fingerprint=key_fingerprint(read_secret(DATABASE_KEY)),
        created_at=now - timedelta(days=91),
    )
    fired = _run("key_old", now)
    KeyRecord.objects.filter(pk=record.pk).update(created_at=now)
    resolved = _run("key_old", now + timedelta(minutes=1))

    assert fired.fired == ["key_old"]
    assert resolved.resolved == ["key_old"]


@pytest.mark.sqlcipher_only
@pytest.mark.django_db
def test_backup_older_than_26_hours_fires_and_resolves() -> None:
    from ops.models import BackupRecord

    now = timezone.now()
    BackupRecord.objects.create(path="x", sha256="0" * 64, created_at=now)
    fresh = _run("backup_stale", now + timedelta(hours=25))
    stale = _run("backup_stale", now + timedelta(hours=27))
    BackupRecord.objects.create(
        path="y", sha256="1" * 64, created_at=now + timedelta(hours=27)
    )
    resolved = _run("backup_stale", now + timedelta(hours=28))

    assert fresh.fired == []
    assert stale.fired == ["backup_stale"]
    assert resolved.resolved == ["backup_stale"]


@pytest.mark.django_db
def test_incident_deadline_within_seven_days_fires_and_resolves() -> None:
    from compliance.incidents import incident_open
    from compliance.models import Incident

    now = timezone.now()
    incident = incident_open(
        title="Lost laptop",
        severity="high",
        category="security",
        detected_at=now - timedelta(days=55),
    )
    Incident.objects.filter(pk=incident.pk).update(
        is_breach=True, individuals_affected=10
    )
    fired = _run("incident_deadline_due", now)
    Incident.objects.filter(pk=incident.pk).update(individuals_notified_at=now)
    resolved = _run("incident_deadline_due", now + timedelta(minutes=1))

    assert fired.fired == ["incident_deadline_due"]
    assert resolved.resolved == ["incident_deadline_due"]


@pytest.mark.django_db
def test_a_firing_rule_keeps_one_open_alert() -> None:
    now = timezone.now()
    llm_calls(now, ("rate_limited", 0))

    _run("llm_rate_limited", now)
    again = _run("llm_rate_limited", now + timedelta(minutes=1))

    assert again.still_open == ["llm_rate_limited"]
    assert Alert.objects.filter(rule="llm_rate_limited").count() == 1


@pytest.mark.django_db
def test_alerts_are_mailed_to_alert_emails(settings: Any) -> None:
    settings.ALERT_EMAILS = ["oncall@example.org"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    now = timezone.now()
    llm_calls(now, ("rate_limited", 0))

    _run("llm_rate_limited", now)

    assert len(mail.outbox) == 1
    assert "llm_rate_limited" in mail.outbox[0].subject
    assert mail.outbox[0].to == ["oncall@example.org"]


@pytest.mark.django_db
def test_alerts_go_to_sentry_when_configured(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sentry_sdk

    sent: list[str] = []
    settings.SENTRY_DSN = "https://key@127.0.0.1/1"
    monkeypatch.setattr(
        sentry_sdk, "capture_message", lambda msg, level: sent.append(msg)
    )
    now = timezone.now()
    llm_calls(now, ("rate_limited", 0))

    _run("llm_rate_limited", now)

    assert sent == ["alert.fired rule=llm_rate_limited"]


@pytest.mark.django_db
def test_critical_alert_opens_one_incident(settings: Any, tmp_path: Path) -> None:
    from compliance.models import Incident

    log = tmp_path / "app.log"
    log.write_text("mail canary.patient@example.org\n")
    settings.LOG_FILES = [str(log)]
    now = timezone.now()

    _run("phi_in_logs", now)
    alert = Alert.objects.get(rule="phi_in_logs")

    incident = Incident.objects.get(pk=alert.incident_id)
    assert incident.source_key == "alert:phi_in_logs"
    assert incident.severity == "critical"
    assert Incident.objects.filter(source_key="alert:phi_in_logs").count() == 1


@pytest.mark.django_db
def test_firing_and_resolving_are_audited() -> None:
    from compliance.models import AuditEvent

    now = timezone.now()
    llm_calls(now, ("rate_limited", 0))
    _run("llm_rate_limited", now)
    _run("llm_rate_limited", now + timedelta(minutes=20))

    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "ALERT_FIRED" in [a.upper() for a in actions]
    assert "ALERT_RESOLVED" in [a.upper() for a in actions]


@pytest.mark.django_db
def test_phi_log_scan_not_configured_raises_a_warning(settings: Any) -> None:
    settings.LOG_FILES = []
    settings.LOG_DIR = ""

    result = _run("phi_log_scan_idle", timezone.now())

    assert result.fired == ["phi_log_scan_idle"]
    assert Alert.objects.get(rule="phi_log_scan_idle").severity == "warning"


@pytest.mark.django_db
def test_phi_log_scan_warning_resolves_once_a_log_file_is_readable(
    settings: Any, tmp_path: Path
) -> None:
    settings.LOG_FILES = []
    settings.LOG_DIR = str(tmp_path)
    now = timezone.now()
    _run("phi_log_scan_idle", now)
    (tmp_path / "stepsync.log").write_text("clean line\n")

    result = _run("phi_log_scan_idle", now + timedelta(minutes=1))

    assert result.resolved == ["phi_log_scan_idle"]


@pytest.mark.sqlcipher_only
@pytest.mark.django_db
def test_a_tampered_page_is_reported_and_opens_a_critical_incident(
    tmp_path: Path,
) -> None:
    from compliance.models import Incident
    from ops.models import IntegrityCheck
    from ops.services import integrity_check_run
    from tests.ops.scratchdb import flip_byte, make_scratch_db

    db = tmp_path / "copy.db"
    key = make_scratch_db(db, rows=3000, journal="delete")
    flip_byte(db, page=3)
    now = timezone.now()

    check = integrity_check_run(now=now, db_path=db, key_hex=key)
    result = _run("integrity_failed", now)

    assert check.ok is False
    assert IntegrityCheck.objects.get().pages == [3]
    assert result.fired == ["integrity_failed"]
    alert = Alert.objects.get(rule="integrity_failed")
    assert alert.details["pages"] == [3]
    assert Incident.objects.get(pk=alert.incident_id).severity == "critical"


@pytest.mark.sqlcipher_only
@pytest.mark.django_db
def test_integrity_alert_resolves_after_a_clean_check(tmp_path: Path) -> None:
    from ops.models import IntegrityCheck

    now = timezone.now()
    IntegrityCheck.objects.create(ok=False, cipher_errors=1, pages=[3], created_at=now)
    _run("integrity_failed", now)
    IntegrityCheck.objects.create(
        ok=True, quick_check="ok", created_at=now + timedelta(hours=24)
    )

    result = _run("integrity_failed", now + timedelta(hours=24, minutes=1))

    assert result.resolved == ["integrity_failed"]
