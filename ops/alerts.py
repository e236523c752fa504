"""Alert rules: evaluate, store (one open alert per rule), resolve, notify.

The rules themselves are data in ``ops/alert_rules.toml`` (severity, check, threshold);
this module holds the checks they name. ``alerts_evaluate(now=...)`` takes the clock
as a parameter so tests move it. A critical alert opens an incident through
compliance (source_key ``alert:<rule>`` de-duplicates it).
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from ops import figures, logscan, selectors
from ops.audit import ops_audit, ops_incident_open
from ops.models import Alert, MetricSample

logger = logging.getLogger(__name__)
RULES_FILE = Path(__file__).with_name("alert_rules.toml")


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    check: str
    summary: str
    threshold: float = 0.0
    window_minutes: int = 5
    min_calls: int = 0


@lru_cache(maxsize=1)
def load_rules(path: Path = RULES_FILE) -> tuple[Rule, ...]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    rules = []
    for name, spec in data["rules"].items():
        if spec["check"] not in CHECKS or spec["severity"] not in (
            "critical",
            "warning",
        ):
            raise ValueError(f"alert rule {name} names an unknown check or severity")
        rules.append(Rule(name=name, **spec))
    return tuple(rules)


Outcome = tuple[bool, float | None]


def _llm(now: datetime, rule: Rule) -> figures.LLMWindow:
    return figures.llm_window(since=now - timedelta(minutes=rule.window_minutes))


def _latest_sample(series: str, now: datetime, minutes: int) -> float | None:
    sample = (
        MetricSample.objects.filter(
            series=series,
            created_at__gte=now - timedelta(minutes=minutes),
            created_at__lte=now,
        )
        .order_by("-created_at")
        .first()
    )
    return None if sample is None else sample.value


def check_encryption_disabled(rule: Rule, now: datetime) -> Outcome:
    from ops.health import _encrypted

    encrypted = _encrypted()
    return encrypted is False, None


def check_phi_in_logs(rule: Rule, now: datetime) -> Outcome:
    report = logscan.scan_files(logscan.configured_log_files())
    return bool(report.findings), float(len(report.findings))


def check_breaker_open_seconds(rule: Rule, now: datetime) -> Outcome:
    snapshot = selectors.breaker_snapshot_or_none()
    seconds = figures.breaker_open_since(snapshot=snapshot, now=now)
    return seconds > rule.threshold, seconds


def check_capacity_pct(rule: Rule, now: datetime) -> Outcome:
    stats = selectors.session_stats_or_none()
    pct = float(getattr(stats, "capacity_used_pct", 0.0))
    return pct > rule.threshold, pct


def check_error_rate(rule: Rule, now: datetime) -> Outcome:
    llm = _llm(now, rule)
    rate = llm.error_rate if llm.calls >= rule.min_calls else 0.0
    http = _latest_sample("http_error_ratio", now, rule.window_minutes) or 0.0
    value = max(rate, http)
    return value > rule.threshold, value


def check_latency_p95_seconds(rule: Rule, now: datetime) -> Outcome:
    p95_ms = _llm(now, rule).latency_ms.get("p95")
    llm = (p95_ms or 0.0) / 1000.0
    http = _latest_sample("http_p95_seconds", now, rule.window_minutes) or 0.0
    value = max(llm, http)
    return value > rule.threshold, value


def check_llm_rate_limited(rule: Rule, now: datetime) -> Outcome:
    hits = _llm(now, rule).rate_limited
    return hits > rule.threshold, float(hits)


def check_db_size_pct(rule: Rule, now: datetime) -> Outcome:
    limit = settings.DATABASE_MAX_SIZE_MB * 1024 * 1024
    pct = 100.0 * selectors.database_size_bytes() / limit if limit else 0.0
    return pct > rule.threshold, pct


def check_key_age_days(rule: Rule, now: datetime) -> Outcome:
    created = selectors.key_created_at()
    if created is None:
        return False, None
    days = (now - created).total_seconds() / 86400
    return days > rule.threshold, days


def check_backup_age_hours(rule: Rule, now: datetime) -> Outcome:
    if settings.DATABASES["default"]["ENGINE"] != "stepsync.db.sqlcipher":
        return False, None  # PostgreSQL backups are the database service's
    latest = selectors.backup_latest()
    if latest is None:
        return True, None
    hours = (now - latest.created_at).total_seconds() / 3600
    return hours > rule.threshold, hours


def check_incident_deadlines_due(rule: Rule, now: datetime) -> Outcome:
    try:
        from compliance.selectors_incidents import incidents_with_deadlines_due
    except ImportError:
        return False, None
    due = incidents_with_deadlines_due(within_days=int(rule.threshold), now=now)
    return bool(due), float(len(due))


CHECKS: dict[str, Callable[[Rule, datetime], Outcome]] = {
    "encryption_disabled": check_encryption_disabled,
    "phi_in_logs": check_phi_in_logs,
    "breaker_open_seconds": check_breaker_open_seconds,
    "capacity_pct": check_capacity_pct,
    "error_rate": check_error_rate,
    "latency_p95_seconds": check_latency_p95_seconds,
    "llm_rate_limited": check_llm_rate_limited,
    "db_size_pct": check_db_size_pct,
    "key_age_days": check_key_age_days,
    "backup_age_hours": check_backup_age_hours,
    "incident_deadlines_due": check_incident_deadlines_due,
}


@dataclass
class Evaluation:
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    still_open: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def alerts_evaluate(
    *,
    now: datetime,
    rules: tuple[Rule, ...] | None = None,
    only: set[str] | None = None,
) -> Evaluation:
    """Run every rule at ``now``; open, refresh or resolve its alert. One rule's
    failure is recorded and the others still run."""
    result = Evaluation()
    for rule in rules or load_rules():
        if only is not None and rule.name not in only:
            continue
        try:
            firing, value = CHECKS[rule.check](rule, now)
            _apply(rule, firing, value, now, result)
        except Exception:  # loop boundary: one broken rule must not stop the rest
            logger.exception("ops.alerts.rule_failed rule=%s", rule.name)
            result.failed.append(rule.name)
    return result


def _apply(
    rule: Rule, firing: bool, value: float | None, now: datetime, result: Evaluation
) -> None:
    current = Alert.objects.filter(rule=rule.name, resolved_at__isnull=True).first()
    if firing and current is None:
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    rule=rule.name,
                    severity=rule.severity,
                    summary=rule.summary,
                    value=value,
                    created_at=now,
                    last_seen_at=now,
                )
        except IntegrityError:  # another evaluator opened it first
            result.still_open.append(rule.name)
            return
        result.fired.append(rule.name)
        _on_fired(alert, rule)
    elif firing and current is not None:
        Alert.objects.filter(pk=current.pk).update(value=value, last_seen_at=now)
        result.still_open.append(rule.name)
    elif current is not None:
        Alert.objects.filter(pk=current.pk).update(resolved_at=now)
        result.resolved.append(rule.name)
        _notify(current, rule, resolved=True)
        ops_audit(
            "ALERT_RESOLVED",
            system_principal="evaluate_alerts",
            target_type="alert",
            target_id=current.pk,
            details={"rule": rule.name},
        )


def _on_fired(alert: Alert, rule: Rule) -> None:
    ops_audit(
        "ALERT_FIRED",
        system_principal="evaluate_alerts",
        target_type="alert",
        target_id=alert.pk,
        details={"rule": rule.name, "severity": rule.severity},
    )
    if rule.severity == "critical":
        incident_id = ops_incident_open(
            title=f"Critical alert: {rule.summary}"[:200],
            severity="critical",
            category=_category(rule),
            source_key=f"alert:{rule.name}",
        )
        Alert.objects.filter(pk=alert.pk).update(incident_id=incident_id)
    _notify(alert, rule, resolved=False)


def _category(rule: Rule) -> str:
    return {
        "phi_in_logs": "privacy",
        "encryption_disabled": "security",
        "breaker_open_seconds": "llm",
    }.get(rule.check, "availability")


def _notify(alert: Alert, rule: Rule, *, resolved: bool) -> None:
    """E-mail ALERT_EMAILS and, when configured, Sentry. Failures are logged only."""
    verb = "resolved" if resolved else "fired"
    subject = f"[Step Sync] {rule.severity.upper()} alert {verb}: {rule.name}"
    body = (
        f"Rule: {rule.name}\nSeverity: {rule.severity}\nState: {verb}\n"
        f"Summary: {rule.summary}\nValue: {alert.value}\nAlert id: {alert.pk}\n"
    )
    if settings.ALERT_EMAILS:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, settings.ALERT_EMAILS)
        except (OSError, Exception):  # mail outage must not stop evaluation
            logger.warning("ops.alerts.mail_failed rule=%s", rule.name)
    if settings.SENTRY_DSN:
        import sentry_sdk

        level = "error" if rule.severity == "critical" else "warning"
        sentry_sdk.capture_message(f"alert.{verb} rule={rule.name}", level=level)


def notification_body(alert: Alert) -> dict[str, Any]:
    return {"rule": alert.rule, "severity": alert.severity, "value": alert.value}
