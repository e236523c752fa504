"""The SQLCipher backend: encryption at rest, keying, pragmas and concurrency."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction

from stepsync.db.sqlcipher.base import open_keyed
from stepsync.db.sqlcipher.errors import DatabaseKeyError
from stepsync.secrets import DATABASE_KEY, read_secret

pytestmark = pytest.mark.sqlcipher_only
PLAINTEXT_HEADER = b"SQLite format 3\x00"
CANARY = "MRN-CANARY-0001"


def db_path() -> Path:
    return Path(connection.settings_dict["NAME"])


def pragma(name: str) -> object:
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_database_file_does_not_start_with_the_plaintext_header() -> None:
    Group.objects.create(name="header-check")
    assert db_path().read_bytes()[:16] != PLAINTEXT_HEADER


@pytest.mark.django_db(transaction=True)
def test_canary_written_through_the_orm_is_absent_from_raw_database_bytes() -> None:
    Group.objects.create(name=f"group {CANARY}")
    raw = b"".join(
        path.read_bytes()
        for path in (db_path(), Path(f"{db_path()}-wal"))
        if path.exists()
    )
    assert CANARY.encode() not in raw


@pytest.mark.django_db(transaction=True)
def test_wal_file_does_not_start_with_plaintext_or_hold_the_canary() -> None:
    Group.objects.create(name=f"wal {CANARY}")
    wal = Path(f"{db_path()}-wal")
    assert wal.exists()
    content = wal.read_bytes()
    assert CANARY.encode() not in content
    assert PLAINTEXT_HEADER not in content[:64]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("journal_mode", "wal"),
        ("synchronous", 1),
        ("busy_timeout", 5000),
        ("secure_delete", 1),
        ("foreign_keys", 1),
    ],
)
def test_connection_applies_the_required_pragma(name: str, expected: object) -> None:
    assert pragma(name) == expected


def test_transactions_begin_immediate() -> None:
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_key_never_appears_in_init_command() -> None:
    init_command = connection.settings_dict["OPTIONS"]["init_command"]
    assert read_secret(DATABASE_KEY) not in init_command
    assert "key" not in init_command.lower()


@pytest.mark.django_db(transaction=True)
def test_wrong_key_is_refused_with_a_message_naming_the_variable() -> None:
    Group.objects.create(name="exists")
    wrong = secrets.token_hex(32)
    with pytest.raises(DatabaseKeyError) as caught:
        open_keyed(str(db_path()), wrong)
    assert caught.value.code == "key_invalid"
    assert "DATABASE_ENCRYPTION_KEY" in str(caught.value)
    assert wrong not in str(caught.value)
    assert caught.value.__suppress_context__ is True


@pytest.mark.django_db(transaction=True)
def test_stdlib_sqlite_cannot_read_the_database() -> None:
    import sqlite3

    Group.objects.create(name="exists")
    plain = sqlite3.connect(db_path())
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        plain.execute("SELECT count(*) FROM sqlite_master").fetchone()
    plain.close()


@pytest.mark.django_db(transaction=True)
def test_eight_threads_writing_fifty_rows_each_get_no_lock_errors() -> None:
    errors: list[str] = []

    def writer(n: int) -> None:
        try:
            for i in range(50):
                with transaction.atomic():
                    Group.objects.filter(name__startswith=f"w{n}-").count()
                    Group.objects.create(name=f"w{n}-{i}")
        except Exception as exc:
            errors.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Group.objects.filter(name__startswith="w").count() == 400
