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
from typing import Any, Literal

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from compliance.selectors_incidents import incidents_with_deadlines_due
from ops import figures, health, logscan, selectors
from ops.audit import ops_audit, ops_incident_open
from ops.models import Alert
from ops.sampling import p95_from_buckets

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
    # Fewer requests (or attempted LLM calls) than this in the window: too few to
    # judge a rate or a percentile, so that source does not count.
    min_requests: int = 0


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


@dataclass(frozen=True)
class Outcome:
    """A check's verdict. ``no_data``: nothing to judge; the alert is left as it is."""

    firing: bool
    value: float | None = None
    no_data: bool = False
    details: dict[str, Any] = field(default_factory=dict)


NO_DATA = Outcome(firing=False, no_data=True)


def _window(now: datetime, rule: Rule) -> tuple[datetime, datetime]:
    return now - timedelta(minutes=rule.window_minutes), now


def _llm(now: datetime, rule: Rule) -> figures.LLMWindow:
    since, until = _window(now, rule)
    return figures.llm_window(since=since, until=until)


def _http(now: datetime, rule: Rule) -> selectors.RequestWindow | None:
    since, until = _window(now, rule)
    return selectors.request_window(since=since, until=until)


def check_encryption_disabled(rule: Rule, now: datetime) -> Outcome:
    return Outcome(firing=health.database_encrypted() is False)


def check_phi_in_logs(rule: Rule, now: datetime) -> Outcome:
    report = logscan.scan_incremental(logscan.configured_log_files())
    return Outcome(firing=bool(report.findings), value=float(len(report.findings)))


def check_log_scan_idle(rule: Rule, now: datetime) -> Outcome:
    readable = logscan.readable_files(logscan.configured_log_files())
    return Outcome(firing=not readable, value=float(len(readable)))


def check_breaker_open_seconds(rule: Rule, now: datetime) -> Outcome:
    snapshot = selectors.breaker_snapshot_now()
    seconds = figures.breaker_open_since(snapshot=snapshot, now=now)
    return Outcome(firing=seconds > rule.threshold, value=seconds)


def check_capacity_pct(rule: Rule, now: datetime) -> Outcome:
    pct = float(selectors.session_stats_now().capacity_used_pct)
    return Outcome(firing=pct > rule.threshold, value=pct)


def _worst(values: list[float | None], rule: Rule) -> Outcome:
    """The worst of the sources that had enough traffic (0 when none had)."""
    worst = max((value for value in values if value is not None), default=0.0)
    return Outcome(firing=worst > rule.threshold, value=worst)


def _enough(count: int, rule: Rule) -> bool:
    return count >= max(rule.min_requests, 1)


def check_error_rate(rule: Rule, now: datetime) -> Outcome:
    llm, http = _llm(now, rule), _http(now, rule)
    if http is None and llm.attempted == 0:
        return NO_DATA
    values: list[float | None] = []
    if _enough(llm.attempted, rule):
        values.append(llm.error_rate)
    if http is not None and _enough(http.requests, rule):
        values.append(http.error_rate)
    return _worst(values, rule)


def check_latency_p95_seconds(rule: Rule, now: datetime) -> Outcome:
    llm, http = _llm(now, rule), _http(now, rule)
    if http is None and llm.attempted == 0:
        return NO_DATA
    values: list[float | None] = []
    p95_ms = llm.latency_ms.get("p95")
    if _enough(llm.attempted, rule) and p95_ms is not None:
        values.append(p95_ms / 1000.0)
    if http is not None and _enough(http.requests, rule):
        values.append(p95_from_buckets(http.buckets))
    return _worst(values, rule)


def check_llm_rate_limited(rule: Rule, now: datetime) -> Outcome:
    hits = _llm(now, rule).rate_limited
    return Outcome(firing=hits > rule.threshold, value=float(hits))


def check_db_size_pct(rule: Rule, now: datetime) -> Outcome:
    limit = settings.DATABASE_MAX_SIZE_MB * 1024 * 1024
    pct = 100.0 * selectors.database_size_bytes() / limit if limit else 0.0
    return Outcome(firing=pct > rule.threshold, value=pct)


def check_key_age_days(rule: Rule, now: datetime) -> Outcome:
    created = selectors.key_created_at()
    if created is None:
        return Outcome(firing=False)
    days = (now - created).total_seconds() / 86400
    return Outcome(firing=days > rule.threshold, value=days)


def check_backup_age_hours(rule: Rule, now: datetime) -> Outcome:
    if not selectors.uses_sqlcipher():
        return Outcome(firing=False)  # PostgreSQL backups are the database service's
    latest = selectors.backup_latest()
    if latest is None:
        return Outcome(firing=True)
    hours = (now - latest.created_at).total_seconds() / 3600
    return Outcome(firing=hours > rule.threshold, value=hours)


def check_integrity_failed(rule: Rule, now: datetime) -> Outcome:
    latest = selectors.integrity_latest()
    if latest is None:
        return Outcome(firing=False)
    return Outcome(
        firing=not latest.ok,
        value=float(latest.cipher_errors),
        details={"check_id": latest.pk, "pages": list(latest.pages)[:20]},
    )


def check_incident_deadlines_due(rule: Rule, now: datetime) -> Outcome:
    due = incidents_with_deadlines_due(within_days=int(rule.threshold), now=now)
    return Outcome(firing=bool(due), value=float(len(due)))


CHECKS: dict[str, Callable[[Rule, datetime], Outcome]] = {
    "encryption_disabled": check_encryption_disabled,
    "phi_in_logs": check_phi_in_logs,
    "log_scan_idle": check_log_scan_idle,
    "breaker_open_seconds": check_breaker_open_seconds,
    "capacity_pct": check_capacity_pct,
    "error_rate": check_error_rate,
    "latency_p95_seconds": check_latency_p95_seconds,
    "llm_rate_limited": check_llm_rate_limited,
    "db_size_pct": check_db_size_pct,
    "key_age_days": check_key_age_days,
    "backup_age_hours": check_backup_age_hours,
    "integrity_failed": check_integrity_failed,
    "incident_deadlines_due": check_incident_deadlines_due,
}


@dataclass
class Evaluation:
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    still_open: list[str] = field(default_factory=list)
    no_data: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def alerts_evaluate(
    *,
    now: datetime,
    rules: tuple[Rule, ...] | None = None,
    only: set[str] | None = None,
) -> Evaluation:
    """Run every rule at ``now``; open, refresh or resolve its alert. One rule's
    failure is recorded and the others still run. A rule without data to judge is
    reported in ``no_data`` (and logged) and its alert is left as it is."""
    result = Evaluation()
    for rule in rules or load_rules():
        if only is not None and rule.name not in only:
            continue
        try:
            outcome = CHECKS[rule.check](rule, now)
            if outcome.no_data:
                logger.warning("ops.alerts.no_data rule=%s", rule.name)
                result.no_data.append(rule.name)
                continue
            _apply(rule, outcome, now, result)
        except Exception:  # loop boundary: one broken rule must not stop the rest
            logger.exception("ops.alerts.rule_failed rule=%s", rule.name)
            result.failed.append(rule.name)
    return result


def _apply(rule: Rule, outcome: Outcome, now: datetime, result: Evaluation) -> None:
    current = Alert.objects.filter(rule=rule.name, resolved_at__isnull=True).first()
    if outcome.firing and current is None:
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    rule=rule.name,
                    severity=rule.severity,
                    summary=rule.summary,
                    value=outcome.value,
                    details=outcome.details,
                    created_at=now,
                    last_seen_at=now,
                )
        except IntegrityError:  # another evaluator opened it first
            result.still_open.append(rule.name)
            return
        result.fired.append(rule.name)
        _on_fired(alert, rule)
    elif outcome.firing and current is not None:
        Alert.objects.filter(pk=current.pk).update(
            value=outcome.value, details=outcome.details, last_seen_at=now
        )
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
        "integrity_failed": "security",
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
        except OSError:  # SMTP errors are OSErrors; a mail outage must not stop us
            logger.warning("ops.alerts.mail_failed rule=%s", rule.name)
    if settings.SENTRY_DSN:
        import sentry_sdk

        level: Literal["error", "warning"] = (
            "error" if rule.severity == "critical" else "warning"
        )
        sentry_sdk.capture_message(f"alert.{verb} rule={rule.name}", level=level)
