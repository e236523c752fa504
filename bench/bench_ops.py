"""Operations benchmark: backup, verify, key rotation and the restore drill (RTO) on a
~100 MB SQLCipher database with the project's schema.

Run: .venv/bin/python bench/bench_ops.py [--size-mb 100] [--runs 3]

Everything lives in a temporary folder (database, key file, backups, maintenance
lock), removed at the end; var/ is never touched. Rows are written through the ORM,
so message text is encrypted by the application exactly as in production.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TEXTS = (
    "My steps stopped syncing from my watch to the app since yesterday afternoon. "
    "I already restarted the phone twice and the watch shows about 7,400 steps.",
    "Health Connect is installed but the app still shows zero steps for today, "
    "the source app has the data though, is there a permission I missed?",
    "Steps appear hours late, usually only after I open the app in the evening.",
    "The count in Apple Health is higher than in the app; I think two sources "
    "write the same walk because I carry the phone and wear the band.",
)
REPLY = (
    "Let's check the basics first: 1. open Health Connect > App permissions and "
    "allow Steps for the source app; 2. set the app's battery use to Unrestricted; "
    "3. open the source app once so it syncs. Did the steps appear after that?"
)


def configure(workdir: Path) -> None:
    """Point every path and secret at ``workdir`` before Django starts."""
    key_file = workdir / "database.key"
    key_file.write_text(secrets.token_hex(32) + "\n")
    key_file.chmod(0o600)
    for name in (
        "DATABASE_URL",
        "DATABASE_ENCRYPTION_KEY",
        "REDIS_URL",
        "PROMETHEUS_MULTIPROC_DIR",
        "LOG_DIR",
        "LOG_FILES",
        "SENTRY_DSN",
    ):
        os.environ.pop(name, None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="stepsync.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        AUDIT_HMAC_KEY=secrets.token_hex(32),
        BACKUP_ENCRYPTION_KEY=secrets.token_hex(32),
        FIELD_ENCRYPTION_KEYS=f"b1:{secrets.token_hex(32)}",
        DATABASE_NAME=str(workdir / "stepsync.db"),
        DATABASE_KEY_FILE=str(key_file),
        BACKUP_DIR=str(workdir / "backups"),
        BACKUP_RETENTION_DAYS="30",
        MAINTENANCE_LOCK_FILE=str(workdir / "maintenance.lock"),
        AUDIT_HEAD_EXPORT_PATH=str(workdir / "audit_heads.jsonl"),
        LOG_LEVEL="ERROR",
    )


def database_bytes() -> int:
    """Pages in use times the page size (the WAL is checkpointed into it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("PRAGMA page_count")
        pages = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA page_size")
        return pages * int(cursor.fetchone()[0])


def fill(size_mb: int) -> dict[str, int]:
    """Users, conversations, messages (encrypted text) and LLM call records."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from chat.models import Conversation, LLMCall, Message

    people = [get_user_model()(username=f"bench{i:04d}") for i in range(200)]
    for person in people:
        person.set_unusable_password()
    users = get_user_model().objects.bulk_create(people)
    now = timezone.now()
    counts = {"users": len(users), "conversations": 0, "messages": 0, "llm_calls": 0}
    batch = 0
    while database_bytes() < size_mb * 1024 * 1024:
        convos = Conversation.objects.bulk_create(
            [
                Conversation(user=users[(batch * 50 + i) % len(users)], title="Sync")
                for i in range(50)
            ]
        )
        messages = []
        for n, convo in enumerate(convos):
            for turn in range(20):
                text = TEXTS[(n + turn) % len(TEXTS)] if turn % 2 == 0 else REPLY
                messages.append(
                    Message(
                        conversation=convo,
                        role="user" if turn % 2 == 0 else "assistant",
                        text=text,
                        created_at=now - timedelta(minutes=turn),
                    )
                )
        Message.objects.bulk_create(messages, batch_size=500)
        LLMCall.objects.bulk_create(
            [
                LLMCall(
                    outcome="ok",
                    latency_ms=800 + i,
                    tokens_in=300,
                    tokens_out=120,
                    upstream_calls=1,
                )
                for i in range(200)
            ]
        )
        counts["conversations"] += len(convos)
        counts["messages"] += len(messages)
        counts["llm_calls"] += 200
        batch += 1
        if batch % 20 == 0:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return counts


def restore_drill() -> float:
    """Back up, write rows after it, restore (timed: the RTO), check they are gone."""
    from django.db import connections
    from django.utils import timezone

    from ops import backups, services
    from ops.models import MetricSample

    backup = services.backup_run(now=timezone.now())
    MetricSample.objects.bulk_create(
        [MetricSample(series="after_backup", value=1.0) for _ in range(10)]
    )
    connections.close_all()
    started = time.perf_counter()
    services.restore_run(backup_path=backup.path, now=timezone.now())
    seconds = time.perf_counter() - started
    if MetricSample.objects.filter(series="after_backup").exists():
        raise SystemExit("restore drill failed: rows written after the backup remain")
    backups.backup_verify(path=backup.path, key_hex=backups.backup_key())
    return seconds


def measure(runs: int) -> dict[str, list[float]]:
    from django.utils import timezone

    from ops import backups, services

    results: dict[str, list[float]] = {
        "backup_db": [],
        "verify_backup": [],
        "rotate_db_key (incl. verified backup)": [],
        "restore drill (RTO)": [],
    }
    key = backups.backup_key()
    for _ in range(runs):
        started = time.perf_counter()
        made = services.backup_run(now=timezone.now())
        results["backup_db"].append(time.perf_counter() - started)
        started = time.perf_counter()
        backups.backup_verify(path=made.path, key_hex=key)
        results["verify_backup"].append(time.perf_counter() - started)
        started = time.perf_counter()
        services.key_rotate(now=timezone.now())
        results["rotate_db_key (incl. verified backup)"].append(
            time.perf_counter() - started
        )
        results["restore drill (RTO)"].append(restore_drill())
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="stepsync-bench-ops-"))
    try:
        configure(workdir)
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
        started = time.perf_counter()
        counts = fill(args.size_mb)
        size = Path(os.environ["DATABASE_NAME"]).stat().st_size / (1024 * 1024)
        print(
            f"database: {size:.1f} MB SQLCipher ({', '.join(f'{k}={v}' for k, v in counts.items())})"
            f", built in {time.perf_counter() - started:.1f} s"
        )
        for name, values in measure(args.runs).items():
            runs = ", ".join(f"{v:.2f}" for v in values)
            print(
                f"{name:40s} median {statistics.median(values):6.2f} s  (runs: {runs})"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
