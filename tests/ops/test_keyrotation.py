"""Key rotation (RELIABILITY.md §A.3, §2.1 items 23-24): success and safe failures."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlcipher3 import dbapi2 as Database

from ops import keyrotation
from ops.checks import pending_key_warnings
from ops.cipherfile import integrity, open_file
from ops.exceptions import (
    DatabaseInUse,
    MaintenanceRequired,
    PendingKeyFound,
    RotationFailed,
    RotationUnsupported,
)
from ops.maintenance import open_descriptors
from stepsync.db.sqlcipher.errors import DatabaseKeyError
from tests.ops.scratchdb import count_rows, make_scratch_db

JOURNAL_MODES = ["wal", "delete"]


class Crash(BaseException):
    """Stands for the process dying at a chosen step (not an Exception: nothing
    in the rotation may catch it)."""


def _setup(tmp_path: Path, journal: str = "wal") -> tuple[Path, str, Path]:
    db = tmp_path / "live.db"
    key = make_scratch_db(db, rows=200, journal=journal)
    key_file = tmp_path / "database.key"
    key_file.write_text(key + "\n")
    return db, key, key_file


def _rotate(db: Path, key: str, key_file: Path, **extra: Any) -> Any:
    return keyrotation.rotate_key(
        db_path=db, old_key=key, key_file=key_file, key_id="knew", **extra
    )


def _opens_with(db: Path, key: str) -> bool:
    try:
        conn = open_file(db, key)
    except DatabaseKeyError:
        return False
    ok = integrity(conn).ok
    conn.close()
    return ok


def _cipher_errors(db: Path, key: str) -> list[Any]:
    conn = open_file(db, key)
    try:
        return conn.execute("PRAGMA cipher_integrity_check").fetchall()
    finally:
        conn.close()


@pytest.mark.usefixtures("maintenance")
def test_rotation_switches_the_key_and_installs_the_key_file(tmp_path: Path) -> None:
    db, old, key_file = _setup(tmp_path)
    backups_taken = []

    result = _rotate(db, old, key_file, backup=lambda: backups_taken.append(1))

    new = key_file.read_text().strip()
    assert new != old
    assert len(new) == 64
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert _opens_with(db, old) is False
    assert _opens_with(db, new) is True
    assert count_rows(db, new) == 200
    assert result.row_counts == {"t": 200}
    assert backups_taken == [1]
    assert not keyrotation.pending_path(key_file).exists()
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0


@pytest.mark.usefixtures("maintenance")
def test_rotation_keeps_the_old_key_in_a_private_history_file(tmp_path: Path) -> None:
    db, old, key_file = _setup(tmp_path)

    _rotate(db, old, key_file, old_key_id="k1")

    history = keyrotation.history_path(key_file)
    assert history.read_text() == f"k1 {old}\n"
    assert stat.S_IMODE(history.stat().st_mode) == 0o600


def test_rotation_refuses_without_the_maintenance_lock(
    tmp_path: Path, settings: Any
) -> None:
    settings.MAINTENANCE_LOCK_FILE = tmp_path / "maintenance.lock"
    db, old, key_file = _setup(tmp_path)

    with pytest.raises(MaintenanceRequired):
        _rotate(db, old, key_file)

    assert key_file.read_text().strip() == old
    assert _opens_with(db, old) is True


@pytest.mark.parametrize("journal", JOURNAL_MODES)
@pytest.mark.usefixtures("maintenance")
def test_rotation_refuses_while_another_connection_is_open(
    tmp_path: Path, journal: str
) -> None:
    db, old, key_file = _setup(tmp_path, journal)
    other = open_file(db, old)
    other.execute("SELECT count(*) FROM t").fetchone()
    try:
        with pytest.raises(DatabaseInUse):
            _rotate(db, old, key_file)
        still_reads = other.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        other.close()

    assert still_reads == 200
    assert key_file.read_text().strip() == old
    assert not keyrotation.pending_path(key_file).exists()
    assert _opens_with(db, old) is True


@pytest.mark.parametrize("journal", JOURNAL_MODES)
@pytest.mark.usefixtures("maintenance")
def test_a_real_write_lock_makes_the_rekey_fail_safely_and_a_retry_succeeds(
    tmp_path: Path, journal: str
) -> None:
    db, old, key_file = _setup(tmp_path, journal)
    competitor: list[Database.Connection] = []
    holders_after_failure: list[int] = []

    def writer_sneaks_in(step: str) -> None:
        if step == "rekeying":
            conn = open_file(db, old)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (v) VALUES ('in flight')")
            competitor.append(conn)

    try:
        with pytest.raises(RotationFailed):
            _rotate(db, old, key_file, progress=writer_sneaks_in)
        holders_after_failure.extend(open_descriptors(db) or [])
        competitor[0].execute("COMMIT")
    finally:
        for conn in competitor:
            conn.close()

    assert len(competitor) == 1
    assert len(set(holders_after_failure)) == 1  # only the competitor's connection
    assert key_file.read_text().strip() == old
    assert not keyrotation.pending_path(key_file).exists()
    assert _opens_with(db, old) is True
    assert _cipher_errors(db, old) == []
    assert count_rows(db, old) == 201
    _rotate(db, old, key_file)
    assert _opens_with(db, key_file.read_text().strip()) is True


@pytest.mark.usefixtures("maintenance")
def test_a_crash_after_the_rekey_leaves_a_recoverable_pending_key(
    tmp_path: Path,
) -> None:
    db, old, key_file = _setup(tmp_path)

    def crash_after_rekey(step: str) -> None:
        if step == "rekeyed":
            raise Crash

    with pytest.raises(Crash):
        _rotate(db, old, key_file, progress=crash_after_rekey)

    pending = keyrotation.pending_path(key_file)
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    assert key_file.read_text().strip() == old
    assert _opens_with(db, old) is False
    assert _opens_with(db, pending.read_text().strip()) is True
    state = keyrotation.pending_state(db_path=db, key_file=key_file, current_key=old)
    assert state == "pending"
    assert str(pending) in keyrotation.pending_advice(state=state, key_file=key_file)


@pytest.mark.usefixtures("maintenance")
def test_rotation_after_a_crash_names_the_key_file_to_use(tmp_path: Path) -> None:
    db, old, key_file = _setup(tmp_path)

    def crash_after_rekey(step: str) -> None:
        if step == "rekeyed":
            raise Crash

    with pytest.raises(Crash):
        _rotate(db, old, key_file, progress=crash_after_rekey)

    with pytest.raises(PendingKeyFound, match=r"database\.key\.pending"):
        _rotate(db, old, key_file)


@pytest.mark.usefixtures("maintenance")
def test_finishing_an_interrupted_rotation_installs_the_pending_key(
    tmp_path: Path,
) -> None:
    db, old, key_file = _setup(tmp_path)

    def crash_after_rekey(step: str) -> None:
        if step == "rekeyed":
            raise Crash

    with pytest.raises(Crash):
        _rotate(db, old, key_file, progress=crash_after_rekey)
    new = keyrotation.pending_path(key_file).read_text().strip()

    state = keyrotation.finish_pending(db_path=db, key_file=key_file, current_key=old)

    assert state == "pending"
    assert key_file.read_text().strip() == new
    assert not keyrotation.pending_path(key_file).exists()
    assert _opens_with(db, new) is True


@pytest.mark.usefixtures("maintenance")
def test_a_crash_before_the_rekey_leaves_the_old_key_in_use(tmp_path: Path) -> None:
    db, old, key_file = _setup(tmp_path)

    def crash_before_rekey(step: str) -> None:
        if step == "pending_written":
            raise Crash

    with pytest.raises(Crash):
        _rotate(db, old, key_file, progress=crash_before_rekey)

    state = keyrotation.pending_state(db_path=db, key_file=key_file, current_key=old)
    assert state == "current"
    assert _opens_with(db, old) is True


@pytest.mark.usefixtures("maintenance")
def test_startup_check_names_the_pending_key_file(tmp_path: Path) -> None:
    db, old, key_file = _setup(tmp_path)

    def crash_after_rekey(step: str) -> None:
        if step == "rekeyed":
            raise Crash

    with pytest.raises(Crash):
        _rotate(db, old, key_file, progress=crash_after_rekey)

    warnings = pending_key_warnings(db_path=db, key_file=key_file, current_key=old)

    assert [w.id for w in warnings] == ["ops.W001"]
    assert str(keyrotation.pending_path(key_file)) in warnings[0].hint
    assert old not in warnings[0].hint


@pytest.mark.usefixtures("maintenance")
def test_failed_backup_stops_rotation_before_the_rekey(tmp_path: Path) -> None:
    db, old, key_file = _setup(tmp_path)

    def broken_backup() -> None:
        raise RotationFailed("backup failed")

    with pytest.raises(RotationFailed):
        _rotate(db, old, key_file, backup=broken_backup)

    assert key_file.read_text().strip() == old
    assert not keyrotation.pending_path(key_file).exists()
    assert _opens_with(db, old) is True


@pytest.mark.usefixtures("maintenance")
def test_rotation_with_the_wrong_current_key_fails_safely(tmp_path: Path) -> None:
    db, old, key_file = _setup(tmp_path)

    with pytest.raises(RotationFailed):
        _rotate(db, secrets.token_hex(32), key_file)

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
