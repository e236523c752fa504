"""manage.py purge_expired: arguments, the one-line summary, non-zero exit on refusal."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator

import pytest
import time_machine
from django.core.management import CommandError, ManagementUtility, call_command

from chat.models import Conversation
from compliance.models import RetentionRun

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 1, 3, 15, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _wall_clock_at_now() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def expired(patient: object) -> Conversation:
    old = NOW - dt.timedelta(days=91)
    return Conversation.objects.create(
        user=patient, created_at=old, last_activity_at=old
    )


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_expired", *args, stdout=out)
    return out.getvalue()


def test_it_prints_a_one_line_summary_with_counts(expired: Conversation) -> None:
    output = run("--now", "2026-06-01T03:15:00Z")

    assert output.count("\n") == 1
    assert "dry_run=False deleted=1 messages=0 conversations=1 llm_calls=0" in output


def test_now_defaults_to_the_current_time(expired: Conversation) -> None:
    run()

    assert RetentionRun.objects.get().now_used.date() == NOW.date()


def test_a_dry_run_deletes_nothing(expired: Conversation) -> None:
    output = run("--dry-run", "--now", "2026-06-01T03:15:00")

    assert "dry_run=True deleted=1" in output
    assert Conversation.objects.count() == 1


def test_a_clock_jump_exits_non_zero(expired: Conversation) -> None:
    run("--now", "2026-06-01T03:15:00Z")

    with pytest.raises(CommandError, match="refused reason=clock_forward"):
        run("--now", "2026-09-01T03:15:00Z")


def test_force_runs_despite_a_clock_jump(expired: Conversation) -> None:
    run("--now", "2026-06-01T03:15:00Z")

    output = run("--force", "--now", "2026-09-01T03:15:00Z")

    assert "purge_expired run=" in output


def test_a_bad_now_is_refused() -> None:
    with pytest.raises(CommandError, match="ISO 8601"):
        run("--now", "yesterday")


def test_the_batch_size_must_be_positive() -> None:
    with pytest.raises(CommandError, match="batch-size"):
        run("--batch-size", "0")


def test_the_batch_size_is_passed_on(
    expired: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}
    from compliance import retention

    real = retention.purge

    def spy(**kwargs: object) -> retention.PurgeResult:
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(retention, "purge", spy)

    run("--batch-size", "7")

    assert seen["batch_size"] == 7


def test_a_refusal_exits_with_status_1(expired: Conversation) -> None:
    run("--now", "2026-06-01T03:15:00Z")
    argv = ["manage.py", "purge_expired", "--now", "2026-09-01T03:15:00Z"]

    with pytest.raises(SystemExit) as exited:
        ManagementUtility(argv).execute()

    assert exited.value.code == 1
