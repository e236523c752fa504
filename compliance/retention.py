"""Retention policy and purge: conversation data expires after DATA_RETENTION_DAYS.

POLICY below is the whole policy, in one reviewable list. Models are resolved by
label through the app registry, so compliance never imports chat. Conversations
under legal hold are kept, and so are their messages and LLM call records.

Audit events and incident records are NOT covered here: they are kept
AUDIT_RETENTION_YEARS (6). Audit events past that are disposed of only by the
separate, manual ``manage.py prune_audit_trail`` (compliance.services.audit_prune,
which keeps the chain verifiable and audits itself); incident records are never
deleted by the application.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from django.db import OperationalError, connection, models, transaction
from django.utils import timezone

from compliance.exceptions import RetentionRefused
from compliance.models import AuditAction, RetentionOutcome, RetentionRun
from compliance.services import audit_record

logger = logging.getLogger(__name__)

SYSTEM_PRINCIPAL = "retention"
CONVERSATION = "chat.Conversation"
# A `now` this far past the last successful run (and past that run's own wall
# clock) looks like a clock that jumped, not like time that passed: refuse.
MAX_CLOCK_JUMP_DAYS = 7


@dataclass(frozen=True)
class RetentionRule:
    """Rows of ``label`` whose ``date_field`` is older than the period expire.

    ``held_by`` is the lookup holding the row's conversation id: rows of a
    conversation under legal hold are kept.
    """

    key: str
    label: str
    date_field: str
    period_setting: str
    held_by: str


POLICY: tuple[RetentionRule, ...] = (
    # Messages first, so each batch deletes what it counts (no hidden cascades).
    RetentionRule(
        "messages", "chat.Message", "created_at", "DATA_RETENTION_DAYS", "conversation"
    ),
    RetentionRule(
        "conversations", CONVERSATION, "last_activity_at", "DATA_RETENTION_DAYS", "pk"
    ),
    RetentionRule(
        "llm_calls",
        "chat.LLMCall",
        "created_at",
        "DATA_RETENTION_DAYS",
        "conversation_id",
    ),
)


@dataclass(frozen=True)
class PurgeResult:
    """What a purge did (or would do, for a dry run): counts per rule key."""

    run_id: int
    now: dt.datetime
    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)
    checkpoint: str = "skipped"

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def cutoff_for(rule: RetentionRule, *, now: dt.datetime) -> dt.datetime:
    """Rows dated strictly before this instant have expired."""
    return now - dt.timedelta(days=int(getattr(settings, rule.period_setting)))


def expired_queryset(rule: RetentionRule, *, now: dt.datetime) -> models.QuerySet:
    """The rows ``rule`` expires at ``now``, legal holds excluded."""
    model = apps.get_model(rule.label)
    held = apps.get_model(CONVERSATION)._base_manager.filter(legal_hold=True)
    return model._base_manager.filter(
        **{f"{rule.date_field}__lt": cutoff_for(rule, now=now)}
    ).exclude(**{f"{rule.held_by}__in": held.values("pk")})


def _delete_batches(queryset: models.QuerySet, *, batch_size: int) -> dict[str, int]:
    """Delete in batches; return deletions per model label (cascades included)."""
    deleted: dict[str, int] = {}
    while True:
        with transaction.atomic():
            ids = list(queryset.values_list("pk", flat=True)[:batch_size])
            if not ids:
                return deleted
            _, per_model = queryset.model._base_manager.filter(pk__in=ids).delete()
        for label, count in per_model.items():
            deleted[label] = deleted.get(label, 0) + count


def clock_check(*, now: dt.datetime) -> str:
    """'' when ``now`` is plausible; else 'clock_backward' or 'clock_forward'."""
    last = (
        RetentionRun.objects.filter(outcome=RetentionOutcome.SUCCESS, dry_run=False)
        .order_by("-now_used", "-id")
        .first()
    )
    if last is None:
        return ""
    if now < last.now_used:
        return "clock_backward"
    jump = dt.timedelta(days=MAX_CLOCK_JUMP_DAYS)
    if now > last.now_used + jump and now > last.started_at + jump:
        return "clock_forward"
    return ""


def _secure_delete_on() -> None:
    """Make SQLite zero what it deletes (settings already ask for it; be sure)."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA secure_delete=ON")


def _checkpoint() -> str:
    """Fold the WAL into the main file and truncate it, so freed pages are gone."""
    if connection.vendor != "sqlite":
        return "not_sqlite"
    if connection.in_atomic_block:
        return "in_transaction"  # SQLite cannot checkpoint inside a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            row = cursor.fetchone()
    except OperationalError:
        logger.warning("retention.checkpoint_failed")
        return "failed"
    return "busy" if row and row[0] else "complete"


def _finish(
    run: RetentionRun, *, outcome: str, reason: str = "", checkpoint: str = ""
) -> None:
    run.outcome = outcome
    run.reason = reason
    run.checkpoint = checkpoint
    run.total = sum(run.counts.values())
    run.finished_at = timezone.now()
    run.save()
    audit_record(
        action=AuditAction.RETENTION_RUN,
        system_principal=SYSTEM_PRINCIPAL,
        target_type="retention_run",
        target_id=run.pk,
        outcome=outcome,
        details={
            "dry_run": run.dry_run,
            "forced": run.forced,
            "total": run.total,
            **{key: int(count) for key, count in run.counts.items()},
            **({"reason": reason} if reason else {}),
            **({"checkpoint": checkpoint} if checkpoint else {}),
        },
    )


def purge(
    *,
    now: dt.datetime,
    dry_run: bool = False,
    batch_size: int = 500,
    force: bool = False,
    policy: Sequence[RetentionRule] = POLICY,
) -> PurgeResult:
    """Delete (or, with ``dry_run``, count) every row POLICY expires at ``now``.

    Batched (``batch_size`` rows per transaction) and idempotent: a second run at
    the same ``now`` deletes nothing. Records a RetentionRun and a RETENTION_RUN
    audit event (counts only). After real deletions on SQLite/SQLCipher it runs
    ``PRAGMA wal_checkpoint(TRUNCATE)``; with ``secure_delete=ON`` the deleted
    content is then overwritten on disk. Raises RetentionRefused (after recording
    a refused run) when ``now`` fails the clock check, unless ``force``.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    wall = timezone.now()
    run = RetentionRun.objects.create(
        started_at=wall, now_used=now, dry_run=dry_run, forced=force
    )
    reason = clock_check(now=now)
    if reason and not force:
        _finish(run, outcome=RetentionOutcome.REFUSED, reason=reason)
        logger.warning("retention.refused run=%s reason=%s", run.pk, reason)
        raise RetentionRefused(reason)
    try:
        counts = {rule.key: 0 for rule in policy}
        key_of = {rule.label: rule.key for rule in policy}
        if not dry_run:
            _secure_delete_on()
        for rule in policy:
            queryset = expired_queryset(rule, now=now)
            if dry_run:
                counts[rule.key] += queryset.count()
                continue
            for label, count in _delete_batches(
                queryset, batch_size=batch_size
            ).items():
                key = key_of.get(label, label)
                counts[key] = counts.get(key, 0) + count
        run.counts = counts
        checkpoint = "skipped" if dry_run or not sum(counts.values()) else ""
        checkpoint = checkpoint or _checkpoint()
    except Exception:
        _finish(run, outcome=RetentionOutcome.FAILED, reason="error")
        logger.exception("retention.failed run=%s", run.pk)
        raise
    _finish(
        run,
        outcome=RetentionOutcome.SUCCESS,
        reason="forced" if reason else "",
        checkpoint=checkpoint,
    )
    logger.info(
        "retention.done run=%s dry_run=%s total=%d checkpoint=%s",
        run.pk,
        dry_run,
        run.total,
        checkpoint,
    )
    return PurgeResult(
        run_id=run.pk,
        now=now,
        dry_run=dry_run,
        counts=dict(run.counts),
        checkpoint=checkpoint,
    )
