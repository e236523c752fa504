"""The job runner: lease (one active runner), schedule, run records, clean stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from ops import jobs
from ops.models import JobLease, JobRun
from stepsync.db.sqlcipher.base import open_keyed
from stepsync.secrets import DATABASE_KEY, read_secret
from tests.ops.conftest import ROOT, manage, subprocess_env


def one_tick() -> str:
    """The state of one pass of the runner loop (no jobs)."""
    states: list[str] = []
    jobs.run_forever(
        stop=threading.Event(),
        holder="me",
        jobs=(),
        once=True,
        on_tick=lambda state, runs: states.append(state),
    )
    return states[0]


@pytest.mark.django_db
def test_only_one_holder_gets_the_lease() -> None:
    now = timezone.now()

    first = jobs.lease_acquire(holder="a", now=now, seconds=60)
    second = jobs.lease_acquire(holder="b", now=now, seconds=60)
    renewed = jobs.lease_acquire(
        holder="a", now=now + timedelta(seconds=30), seconds=60
    )

    assert (first, second, renewed) == (True, False, True)


@pytest.mark.django_db
def test_an_expired_lease_passes_to_the_waiting_runner() -> None:
    now = timezone.now()
    jobs.lease_acquire(holder="a", now=now, seconds=60)

    taken = jobs.lease_acquire(holder="b", now=now + timedelta(seconds=61), seconds=60)

    assert taken is True
    assert JobLease.objects.get().holder == "b"


@pytest.mark.django_db
def test_a_job_run_is_recorded_with_its_counts() -> None:
    job = jobs.Job("demo", lambda: timedelta(minutes=1), lambda now: {"done": 3}, False)

    run = jobs.job_run(job, now=timezone.now(), holder="me")

    assert (run.outcome, run.counts) == ("success", {"done": 3})
    assert run.finished_at is not None


@pytest.mark.django_db
def test_a_failing_job_is_recorded_and_the_runner_goes_on() -> None:
    def boom(now: Any) -> dict[str, int]:
        raise RuntimeError("x")

    failing = jobs.Job("bad", lambda: timedelta(minutes=1), boom, True)
    fine = jobs.Job("good", lambda: timedelta(minutes=1), lambda now: {}, False)

    runs = jobs.run_due_jobs(now=timezone.now(), holder="me", jobs=(failing, fine))

    assert [(r.job, r.outcome) for r in runs] == [
        ("bad", "failed"),
        ("good", "success"),
    ]
    assert runs[0].error_code == "RuntimeError"


class CodedError(Exception):
    def __init__(self, code: object) -> None:
        super().__init__("coded")
        self.code = code


@pytest.mark.parametrize(
    ("code", "expected"),
    [(None, "CodedError"), (7, "CodedError"), ("disk_full", "disk_full")],
)
@pytest.mark.django_db
def test_a_failing_jobs_error_code_is_its_string_code_or_its_type(
    code: object, expected: str
) -> None:
    def boom(now: Any) -> dict[str, int]:
        raise CodedError(code)

    run = jobs.job_run(
        jobs.Job("bad", lambda: timedelta(minutes=1), boom, False),
        now=timezone.now(),
        holder="me",
    )

    assert (run.outcome, run.error_code) == ("failed", expected)


@pytest.mark.django_db
def test_a_standby_runner_cannot_take_the_lease_during_a_long_job(
    settings: Any,
) -> None:
    settings.JOB_LEASE_SECONDS = 90
    taken_meanwhile: list[bool] = []

    def long_backup(now: Any) -> dict[str, int]:
        later = timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS + 60)
        taken_meanwhile.append(
            jobs.lease_acquire(holder="standby", now=later, seconds=90)
        )
        return {}

    job = jobs.Job("long", lambda: jobs.DAY, long_backup, False, lease_seconds=3600)

    jobs.run_due_jobs(now=timezone.now(), holder="leader", jobs=(job,))

    assert taken_meanwhile == [False]
    assert JobLease.objects.get().holder == "leader"


def test_the_daily_jobs_include_the_audit_chain_verification() -> None:
    daily = {job.name for job in jobs.JOBS if job.interval() == jobs.DAY}

    assert {
        "purge_expired",
        "backup_db",
        "check_integrity",
        "verify_audit_chain",
        "audit_head_export",
    } == daily


@pytest.mark.django_db
def test_the_audit_chain_job_verifies_and_is_audited() -> None:
    from compliance.models import AuditAction, AuditEvent

    [job] = [job for job in jobs.JOBS if job.name == "verify_audit_chain"]

    run = jobs.job_run(job, now=timezone.now(), holder="me")

    assert run.outcome == "success"
    assert AuditEvent.objects.filter(action=AuditAction.AUDIT_VERIFY).count() == 1


@pytest.mark.django_db
def test_a_job_is_not_due_again_within_its_interval() -> None:
    job = jobs.Job("demo", lambda: timedelta(minutes=15), lambda now: {}, False)
    now = timezone.now()
    jobs.job_run(job, now=now, holder="me")

    assert jobs.job_due(job, now + timedelta(minutes=5)) is False
    assert jobs.job_due(job, now + timedelta(minutes=15)) is True


@pytest.mark.django_db
def test_the_runner_pauses_during_maintenance(settings: Any, tmp_path: Any) -> None:
    from ops.maintenance import maintenance_lock

    settings.MAINTENANCE_LOCK_FILE = tmp_path / "maint.lock"
    with maintenance_lock(operation="test"):
        state = one_tick()

    assert state == "maintenance"


@pytest.mark.django_db(transaction=True)
def test_two_runners_started_at_once_only_one_runs() -> None:
    env = subprocess_env()
    args = [
        sys.executable,
        "manage.py",
        "runjobs",
        "--once",
        "--jobs",
        "evaluate_alerts,sample_metrics",
    ]
    procs = [
        subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]

    assert [p.returncode for p in procs] == [0, 0], [o[1][-1500:] for o in outputs]
    states = sorted(
        "leader" if "state=leader" in out else "standby" for out, _ in outputs
    )
    assert states == ["leader", "standby"]
    assert JobRun.objects.filter(job="evaluate_alerts").count() == 1
    assert JobRun.objects.filter(job="sample_metrics").count() == 1


@pytest.mark.django_db(transaction=True)
def test_runner_stops_cleanly_on_sigterm_and_releases_the_lease() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "runjobs",
            "--tick",
            "0.2",
            "--jobs",
            "evaluate_alerts",
        ],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)

    assert "state=leader" in line
    assert proc.returncode == 0, err[-1500:]
    assert "runjobs stopped" in out
    assert JobLease.objects.get().expires_at < timezone.now()


@pytest.mark.django_db(transaction=True)
def test_runjobs_once_records_each_selected_job() -> None:
    result = manage(
        "runjobs", "--once", "--jobs", "check_integrity", env=subprocess_env()
    )

    assert result.returncode == 0, result.stderr[-1500:]
    run = JobRun.objects.get(job="check_integrity")
    assert run.outcome == "success"


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's write lock")
@pytest.mark.django_db(transaction=True)
def test_a_locked_database_costs_the_runner_one_tick_not_its_life() -> None:
    other = open_keyed(connection.settings_dict["NAME"], read_secret(DATABASE_KEY))
    other.execute("PRAGMA busy_timeout = 0")
    other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
    try:
        state = one_tick()
    finally:
        other.rollback()
        other.close()
    assert state == "unavailable"
