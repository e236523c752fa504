"""Key rotation (RELIABILITY.md §A.3, §2.1 items 23-24): success and safe failures."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest
from sqlcipher3 import dbapi2 as Database

from ops import cipherfile, keyrotation
from ops.cipherfile import integrity, open_file
from ops.exceptions import DatabaseInUse, RotationFailed, RotationUnsupported
from stepsync.db.sqlcipher.errors import DatabaseKeyError
from tests.ops.scratch import count_rows, make_scratch_db


def _setup(tmp_path: Path) -> tuple[Path, str, Path]:
    db = tmp_path / "live.db"
    key = make_scratch_db(db, rows=200)
    key_file = tmp_path / "database.key"
    key_file.write_text(key + "\n")
    return db, key, key_file


def _opens_with(db: Path, key: str) -> bool:
    try:
        conn = open_file(db, key)
    except DatabaseKeyError:
        return False
    ok = integrity(conn).ok
    conn.close()
    return ok


def test_rotation_switches_the_key_and_writes_the_key_file(tmp_path: Path) -> None:
    db, old, key_file = _setup(tmp_path)
    backups_taken = []

    result = keyrotation.rotate_key(
        db_path=db,
        old_key=old,
        key_file=key_file,
        backup=lambda: backups_taken.append(1),
    )

    new = key_file.read_text().strip()
    assert new != old
    assert len(new) == 64
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert _opens_with(db, old) is False
    assert _opens_with(db, new) is True
    assert count_rows(db, new) == 200
    assert result.row_counts == {"t": 200}
    assert backups_taken == [1]
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0


def test_rotation_refuses_while_another_connection_is_open(tmp_path: Path) -> None:
    db, old, key_file = _setup(tmp_path)
    other = open_file(db, old)
    other.execute("SELECT count(*) FROM t").fetchone()
    try:
        with pytest.raises(DatabaseInUse):
            keyrotation.rotate_key(db_path=db, old_key=old, key_file=key_file)
        still_reads = other.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        other.close()

    assert still_reads == 200
    assert key_file.read_text().strip() == old
    assert _opens_with(db, old) is True


def test_rotation_refuses_while_another_writer_holds_the_lock(tmp_path: Path) -> None:
    db, old, key_file = _setup(tmp_path)
    writer = open_file(db, old)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t (v) VALUES ('in flight')")
    try:
        with pytest.raises(DatabaseInUse):
            keyrotation.rotate_key(db_path=db, old_key=old, key_file=key_file)
    finally:
        writer.execute("COMMIT")
        writer.close()

    assert key_file.read_text().strip() == old
    assert _opens_with(db, old) is True
    assert count_rows(db, old) == 201


def test_failed_rekey_leaves_the_old_key_working_and_a_retry_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, old, key_file = _setup(tmp_path)
    calls = []

    def failing_rekey(conn: Database.Connection, new_key: str) -> None:
        calls.append(conn)
        raise Database.OperationalError("database is locked")

    monkeypatch.setattr(cipherfile, "rekey", failing_rekey)
    with pytest.raises(RotationFailed):
        keyrotation.rotate_key(db_path=db, old_key=old, key_file=key_file)
    with pytest.raises(Database.ProgrammingError):
        calls[0].execute("SELECT 1")  # the rekeying connection was closed at once
    monkeypatch.undo()

    assert key_file.read_text().strip() == old
    assert _opens_with(db, old) is True
    keyrotation.rotate_key(db_path=db, old_key=old, key_file=key_file)
    assert _opens_with(db, key_file.read_text().strip()) is True


def test_failed_backup_stops_rotation_before_the_rekey(tmp_path: Path) -> None:
    db, old, key_file = _setup(tmp_path)

    def broken_backup() -> None:
        raise RotationFailed("backup failed")

    with pytest.raises(RotationFailed):
        keyrotation.rotate_key(
            db_path=db, old_key=old, key_file=key_file, backup=broken_backup
        )

    assert key_file.read_text().strip() == old
    assert _opens_with(db, old) is True


def test_rotation_with_the_wrong_current_key_fails_safely(tmp_path: Path) -> None:
    db, old, key_file = _setup(tmp_path)

    with pytest.raises(RotationFailed):
        keyrotation.rotate_key(
            db_path=db, old_key=secrets.token_hex(32), key_file=key_file
        )

    assert _opens_with(db, old) is True


@pytest.mark.django_db
def test_service_refuses_when_the_key_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.utils import timezone

    from ops.services import key_rotate

    monkeypatch.setenv("DATABASE_ENCRYPTION_KEY", secrets.token_hex(32))

    with pytest.raises(RotationUnsupported, match="DATABASE_KEY_FILE"):
        key_rotate(now=timezone.now())
