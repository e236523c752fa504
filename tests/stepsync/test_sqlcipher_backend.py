"""The SQLCipher backend: encryption at rest, keying, pragmas and concurrency."""

from __future__ import annotations

import secrets
import shutil
import sqlite3
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
# WAL layout (sqlite.org/fileformat2.html#walformat): a 32-byte header holding the
# page size, then frames of a 24-byte header and one page image each.
WAL_MAGIC = (0x377F0682, 0x377F0683)
WAL_HEADER, FRAME_HEADER = 32, 24


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


def wal_pages(content: bytes) -> list[bytes]:
    """The page images of every frame in a WAL file."""
    assert int.from_bytes(content[:4], "big") in WAL_MAGIC
    step = FRAME_HEADER + int.from_bytes(content[8:12], "big")
    return [
        content[offset + FRAME_HEADER : offset + step]
        for offset in range(WAL_HEADER, len(content) - step + 1, step)
    ]


@pytest.mark.django_db(transaction=True)
def test_wal_frames_hold_only_encrypted_pages_and_no_canary() -> None:
    Group.objects.create(name=f"wal {CANARY}")
    content = Path(f"{db_path()}-wal").read_bytes()
    pages = wal_pages(content)
    assert pages
    assert CANARY.encode() not in content
    assert not any(page.startswith(PLAINTEXT_HEADER) for page in pages)
    # A plaintext page is mostly zero bytes (over 95 %); an encrypted one about 1/256.
    assert all(page.count(0) < len(page) // 20 for page in pages)


@pytest.mark.django_db(transaction=True)
def test_stdlib_sqlite_cannot_read_the_database_and_its_wal(tmp_path: Path) -> None:
    Group.objects.create(name=f"wal {CANARY}")
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{db_path()}{suffix}", tmp_path / f"copy.db{suffix}")
    plain = sqlite3.connect(tmp_path / "copy.db")
    try:
        with pytest.raises(sqlite3.DatabaseError, match="file is not a database"):
            plain.execute("SELECT count(*) FROM sqlite_master").fetchall()
    finally:
        plain.close()


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


@pytest.mark.django_db
@pytest.mark.parametrize("attempt", [1, 2])
def test_placeholders_and_literal_percent_convert_the_same_every_time(
    attempt: int,
) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s || '%%', %s", [f"a{attempt}", attempt])
        assert cursor.fetchone() == (f"a{attempt}%", attempt)
