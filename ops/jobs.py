"""The job runner: a schedule, a database lease (one active runner) and run records.

Only the holder of the unexpired ``runjobs`` lease runs jobs; a second runner (on
this or another machine) waits and takes over when the lease expires. A job is due
when its last recorded run started at least its interval ago, so restarts do not
repeat work. Each run is a JobRun row (outcome and counts, never content).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from ops.audit import ops_audit
from ops.maintenance import maintenance_active
from ops.models import JobLease, JobRun

logger = logging.getLogger(__name__)
LEASE_NAME = "runjobs"
DAY = timedelta(days=1)


def _cleanup_sessions(now: datetime) -> dict[str, int]:
    from chat.services import sessions_cleanup

    return {"closed": sessions_cleanup(now=now)}


def _evaluate_alerts(now: datetime) -> dict[str, int]:
    from ops.alerts import alerts_evaluate

    result = alerts_evaluate(now=now)
    return {
        "fired": len(result.fired),
        "resolved": len(result.resolved),
        "open": len(result.still_open),
        "no_data": len(result.no_data),
        "failed": len(result.failed),
    }


def _sample_metrics(now: datetime) -> dict[str, int]:
    from ops.sampling import sample_minute

    return {"series": sample_minute(now=now)}


def _purge_expired(now: datetime) -> dict[str, int]:
    from compliance import retention

    result = retention.purge(now=now)
    return {"deleted": result.total}


def _backup_db(now: datetime) -> dict[str, int]:
    from ops.selectors import uses_sqlcipher
    from ops.services import backup_run

    if not uses_sqlcipher():
        return {"skipped": 1}
    result = backup_run(now=now)
    return {"tables": len(result.row_counts), "bytes": result.size_bytes}


def _check_integrity(now: datetime) -> dict[str, int]:
    from ops.services import integrity_check_run

    check = integrity_check_run(now=now)
    return {"ok": int(check.ok), "cipher_errors": check.cipher_errors}


def _verify_audit_chain(now: datetime) -> dict[str, int]:
    from compliance.services import audit_chain_verify

    report = audit_chain_verify(system_principal="runjobs")
    if not report.ok:
        raise AuditChainBroken()
    return {"checked": report.checked}


def _audit_head_export(now: datetime) -> dict[str, int]:
    from compliance.services import audit_head_export

    exported = audit_head_export(system_principal="runjobs")
    return {"seq": int(exported.seq)}


class AuditChainBroken(Exception):
    """verify_audit_chain found a break (the AUDIT_VERIFY row names where)."""

    code = "audit_chain_broken"


@dataclass(frozen=True)
class Job:
    name: str
    interval: Callable[[], timedelta]
    run: Callable[[datetime], dict[str, int]]
    audited: bool = True
    # How long the lease is taken for before this job starts: a standby runner
    # must not take over while a long job (a backup of a large file) still runs.
    lease_seconds: int = 0


HOUR = 3600
JOBS: tuple[Job, ...] = (
    Job("evaluate_alerts", lambda: timedelta(minutes=1), _evaluate_alerts, False),
    Job("sample_metrics", lambda: timedelta(minutes=1), _sample_metrics, False),
    Job(
        "cleanup_sessions",
        lambda: timedelta(minutes=settings.CLEANUP_INTERVAL_MINUTES),
        _cleanup_sessions,
    ),
    Job("purge_expired", lambda: DAY, _purge_expired, lease_seconds=HOUR),
    Job("backup_db", lambda: DAY, _backup_db, lease_seconds=HOUR),
    Job("check_integrity", lambda: DAY, _check_integrity, lease_seconds=HOUR),
    Job("verify_audit_chain", lambda: DAY, _verify_audit_chain, lease_seconds=HOUR),
    Job("audit_head_export", lambda: DAY, _audit_head_export),
)


def runner_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_acquire(*, holder: str, now: datetime, seconds: int) -> bool:
    """Take or renew the lease; atomic (a conditional UPDATE), so two runners never
    both win. True when ``holder`` holds it until ``now + seconds``."""
    expires = now + timedelta(seconds=seconds)
    won = JobLease.objects.filter(
        Q(holder=holder) | Q(expires_at__lt=now), name=LEASE_NAME
    ).update(holder=holder, expires_at=expires)
    if won:
        return True
    try:
        with transaction.atomic():
            JobLease.objects.create(name=LEASE_NAME, holder=holder, expires_at=expires)
    except IntegrityError:
        return False
    return True


def lease_release(*, holder: str, now: datetime) -> None:
    JobLease.objects.filter(name=LEASE_NAME, holder=holder).update(
        expires_at=now - timedelta(seconds=1)
    )


def job_due(job: Job, now: datetime) -> bool:
    last = JobRun.objects.filter(job=job.name).order_by("-started_at").first()
    return last is None or last.started_at <= now - job.interval() + timedelta(
        seconds=1
    )


def error_code(exc: BaseException) -> str:
    """The exception's string ``code`` when it has one, else its type name."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code[:64]
    return type(exc).__name__[:64]


def job_run(job: Job, *, now: datetime, holder: str) -> JobRun:
    """Run one job and record it; a failure is recorded, logged and audited."""
    run = JobRun.objects.create(job=job.name, runner=holder[:128], started_at=now)
    try:
        counts = job.run(now)
        run.outcome = "success"
        run.counts = {k: int(v) for k, v in counts.items()}
    except Exception as exc:  # loop boundary: record the failure, keep the runner alive
        logger.exception("ops.jobs.failed job=%s", job.name)
        run.outcome = "failed"
        run.error_code = error_code(exc)
    run.finished_at = timezone.now()
    run.save(update_fields=["outcome", "counts", "error_code", "finished_at"])
    if job.audited or run.outcome != "success":
        ops_audit(
            "JOB_RUN",
            system_principal="runjobs",
            target_type="job",
            target_id=run.pk,
            outcome="success" if run.outcome == "success" else "failure",
            details={"job": job.name, **run.counts},
        )
    return run


def run_due_jobs(
    *,
    now: datetime,
    holder: str,
    jobs: tuple[Job, ...] = JOBS,
    stop: threading.Event | None = None,
) -> list[JobRun]:
    runs = []
    for job in jobs:
        if stop is not None and stop.is_set():
            break
        if not job_due(job, now):
            continue
        seconds = max(settings.JOB_LEASE_SECONDS, job.lease_seconds)
        if not lease_acquire(holder=holder, now=timezone.now(), seconds=seconds):
            break  # lost the lease (e.g. a long pause): the other runner continues
        runs.append(job_run(job, now=now, holder=holder))
    return runs


def run_forever(
    *,
    stop: threading.Event,
    holder: str,
    jobs: tuple[Job, ...] = JOBS,
    once: bool = False,
    tick_seconds: float = 15.0,
    on_tick: Callable[[str, list[JobRun]], Any] | None = None,
) -> None:
    """The scheduler loop: until ``stop`` is set (SIGTERM), or one pass with ``once``.

    A database fault (locked past the busy timeout, unreachable) costs one tick,
    state "unavailable": the runner lives on and tries again at the next tick.
    """
    try:
        while not stop.is_set():
            close_old_connections()
            try:
                state, runs = _tick(holder=holder, jobs=jobs, stop=stop)
            except DatabaseError as exc:
                logger.warning("jobs.tick_failed type=%s", type(exc).__name__)
                state, runs = "unavailable", []
            if on_tick is not None:
                on_tick(state, runs)
            if once:
                break
            stop.wait(tick_seconds)
    finally:
        if not once:
            try:
                lease_release(holder=holder, now=timezone.now())
            except DatabaseError as exc:  # the lease expires on its own
                logger.warning("jobs.release_failed type=%s", type(exc).__name__)


def _tick(
    *, holder: str, jobs: tuple[Job, ...], stop: threading.Event
) -> tuple[str, list[JobRun]]:
    now = timezone.now()
    if maintenance_active():
        return "maintenance", []
    if lease_acquire(holder=holder, now=now, seconds=settings.JOB_LEASE_SECONDS):
        return "leader", run_due_jobs(now=now, holder=holder, jobs=jobs, stop=stop)
    return "standby", []
