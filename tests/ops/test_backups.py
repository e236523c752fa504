"""Encrypted backups: key checks, header, manifest, concurrent writes, the restore drill."""

from __future__ import annotations

import json
import secrets
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ops import backups
from ops.cipherfile import header_is_plaintext, integrity, open_file
from ops.exceptions import (
    BackupInvalid,
    BackupKeyMissing,
    BackupNotFound,
    DatabaseInUse,
    MaintenanceRequired,
)
from tests.ops.scratchdb import count_rows, make_scratch_db

NOW = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)


def _backup(
    tmp_path: Path, db: Path, key: str, backup_key: str
) -> backups.BackupResult:
    return backups.backup_create(
        now=NOW,
        backup_dir=tmp_path / "bak",
        source_path=db,
        source_key=key,
        key_hex=backup_key,
    )


def test_backup_refuses_an_empty_key(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    key = make_scratch_db(db)

    with pytest.raises(BackupKeyMissing):
        _backup(tmp_path, db, key, "")

    assert not (tmp_path / "bak").exists() or not list((tmp_path / "bak").iterdir())


def test_backup_key_setting_missing_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BACKUP_ENCRYPTION_KEY", "")
    monkeypatch.setenv("BACKUP_ENCRYPTION_KEY_FILE", str(tmp_path / "none.key"))

    with pytest.raises(BackupKeyMissing):
        backups.backup_key()


def test_backup_is_encrypted_with_its_own_key_and_has_a_manifest(
    tmp_path: Path,
) -> None:
    db = tmp_path / "live.db"
    key = make_scratch_db(db, rows=30)
    backup_key = secrets.token_hex(32)

    result = _backup(tmp_path, db, key, backup_key)

    assert header_is_plaintext(result.path) is False
    assert count_rows(result.path, backup_key) == 30
    manifest = json.loads(backups.manifest_path(result.path).read_text())
    assert manifest["sha256"] == result.sha256
    assert manifest["row_counts"] == {"t": 30}
    assert manifest["key_id"] == result.key_id
    assert key not in manifest.values()
    assert backup_key not in json.dumps(manifest)


def test_backup_does_not_open_with_the_live_key(tmp_path: Path) -> None:
    from stepsync.db.sqlcipher.errors import DatabaseKeyError

    db = tmp_path / "live.db"
    key = make_scratch_db(db)
    result = _backup(tmp_path, db, key, secrets.token_hex(32))

    with pytest.raises(DatabaseKeyError):
        open_file(result.path, key)


def test_verify_backup_accepts_a_good_backup(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    key = make_scratch_db(db, rows=12)
    backup_key = secrets.token_hex(32)
    result = _backup(tmp_path, db, key, backup_key)

    assert backups.backup_verify(path=result.path, key_hex=backup_key) == {"t": 12}


def test_verify_backup_rejects_a_tampered_file(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    key = make_scratch_db(db)
    backup_key = secrets.token_hex(32)
    result = _backup(tmp_path, db, key, backup_key)
    data = bytearray(result.path.read_bytes())
    data[5000] ^= 0xFF
    result.path.write_bytes(bytes(data))

    with pytest.raises(BackupInvalid):
        backups.backup_verify(path=result.path, key_hex=backup_key)


def test_backup_during_concurrent_writes_matches_its_snapshot(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    key = make_scratch_db(db, rows=2000)
    backup_key = secrets.token_hex(32)
    stop = threading.Event()
    written = []

    def writer() -> None:
        conn = open_file(db, key, busy_ms=5000)
        while not stop.is_set():
            conn.execute("INSERT INTO t (v) VALUES ('more')")
            written.append(1)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 50:
            threading.Event().wait(0.005)
        result = _backup(tmp_path, db, key, backup_key)
    finally:
        stop.set()
        thread.join()

    conn = open_file(result.path, backup_key)
    check = integrity(conn, full=True)
    in_backup = conn.execute("SELECT count(*) FROM t").fetchone()[0]
    conn.close()
    assert check.ok is True
    assert in_backup == result.row_counts["t"]
    assert in_backup >= 2050
    assert header_is_plaintext(result.path) is False


def test_old_backups_are_pruned_but_the_newest_is_kept(tmp_path: Path) -> None:
    import os

    db = tmp_path / "live.db"
    key = make_scratch_db(db)
    backup_key = secrets.token_hex(32)
    old = _backup(tmp_path, db, key, backup_key)
    ancient = (NOW - timedelta(days=40)).timestamp()
    os.utime(old.path, (ancient, ancient))
    newer = backups.backup_create(
        now=NOW + timedelta(seconds=1),
        backup_dir=tmp_path / "bak",
        source_path=db,
        source_key=key,
        key_hex=backup_key,
    )

    removed = backups.backups_prune(
        now=NOW, backup_dir=tmp_path / "bak", retention_days=30
    )

    assert removed == 1
    assert backups.backups_list(backup_dir=tmp_path / "bak") == [newer.path]


def _leave_stale_wal(db: Path, key: str, rows: int) -> None:
    """Write rows after the backup and leave their WAL behind, as a crash would."""
    conn = open_file(db, key)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [("after backup",)] * rows)
    saved = {s: Path(f"{db}{s}").read_bytes() for s in ("-wal", "-shm")}
    conn.close()
    for suffix, data in saved.items():
        Path(f"{db}{suffix}").write_bytes(data)


@pytest.mark.usefixtures("maintenance")
def test_restore_drill_drops_rows_written_after_the_backup(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    key = make_scratch_db(db, rows=40)
    backup_key = secrets.token_hex(32)
    result = _backup(tmp_path, db, key, backup_key)
    _leave_stale_wal(db, key, rows=7)

    restored = backups.restore_from_backup(
        backup_path=result.path, key_hex=backup_key, live_path=db, live_key=key
    )

    assert restored.row_counts == {"t": 40}
    assert count_rows(db, key) == 40
    assert header_is_plaintext(db) is False


@pytest.mark.usefixtures("maintenance")
@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_restore_refuses_while_another_connection_is_open(
    tmp_path: Path, journal: str
) -> None:
    db = tmp_path / "live.db"
    key = make_scratch_db(db, rows=5, journal=journal)
    backup_key = secrets.token_hex(32)
    result = _backup(tmp_path, db, key, backup_key)
    before = db.read_bytes()
    other = open_file(db, key)
    other.execute("SELECT count(*) FROM t").fetchone()
    try:
        with pytest.raises(DatabaseInUse):
            backups.restore_from_backup(
                backup_path=result.path, key_hex=backup_key, live_path=db, live_key=key
            )
    finally:
        other.close()

    assert count_rows(db, key) == 5
    assert len(db.read_bytes()) == len(before)


@pytest.mark.usefixtures("maintenance")
def test_restore_rekeys_the_backup_to_the_live_key(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    key = make_scratch_db(db, rows=3)
    backup_key = secrets.token_hex(32)
    result = _backup(tmp_path, db, key, backup_key)
    shutil.copyfile(result.path, tmp_path / "copy")

    backups.restore_from_backup(
        backup_path=result.path, key_hex=backup_key, live_path=db, live_key=key
    )

    assert count_rows(db, key) == 3


@pytest.mark.usefixtures("maintenance")
def test_restore_removes_a_stale_wal_left_beside_the_live_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "live.db"
    key = make_scratch_db(db, rows=40)
    backup_key = secrets.token_hex(32)
    result = _backup(tmp_path, db, key, backup_key)
    _leave_stale_wal(db, key, rows=7)
    stale = {s: Path(f"{db}{s}").read_bytes() for s in ("-wal", "-shm")}
    real_check = backups._ensure_not_in_use

    def check_then_crash_leftovers(path: Path, live_key: str) -> None:
        real_check(path, live_key)
        for suffix, data in stale.items():
            Path(f"{path}{suffix}").write_bytes(data)

    monkeypatch.setattr(backups, "_ensure_not_in_use", check_then_crash_leftovers)

    backups.restore_from_backup(
        backup_path=result.path, key_hex=backup_key, live_path=db, live_key=key
    )

    assert count_rows(db, key) == 40
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0


def test_restore_refuses_without_the_maintenance_lock(
    tmp_path: Path, settings: object
) -> None:
    settings.MAINTENANCE_LOCK_FILE = tmp_path / "maintenance.lock"
    db = tmp_path / "live.db"
    key = make_scratch_db(db, rows=5)
    backup_key = secrets.token_hex(32)
    result = _backup(tmp_path, db, key, backup_key)

    with pytest.raises(MaintenanceRequired):
        backups.restore_from_backup(
            backup_path=result.path, key_hex=backup_key, live_path=db, live_key=key
        )

    assert count_rows(db, key) == 5


def test_orphaned_partial_files_of_a_crashed_backup_are_pruned(tmp_path: Path) -> None:
    import os

    bak = tmp_path / "bak"
    bak.mkdir()
    orphan = bak / "stepsync-20260101T000000000000Z.sqlcipher.partial"
    orphan.write_bytes(b"half a backup")
    stale_tmp = bak / "stepsync-20260101T000000000000Z.sqlcipher.manifest.json.tmp"
    stale_tmp.write_text("{")
    two_hours_ago = (NOW - timedelta(hours=2)).timestamp()
    for path in (orphan, stale_tmp):
        os.utime(path, (two_hours_ago, two_hours_ago))
    fresh = bak / "stepsync-20260110T025959000000Z.sqlcipher.partial"
    fresh.write_bytes(b"being written")
    recent = NOW.timestamp()
    os.utime(fresh, (recent, recent))

    removed = backups.backups_prune(now=NOW, backup_dir=bak, retention_days=30)

    assert removed == 2
    assert sorted(p.name for p in bak.iterdir()) == [fresh.name]


def test_latest_resolves_to_the_newest_backup(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    key = make_scratch_db(db, rows=3)
    backup_key = secrets.token_hex(32)
    _backup(tmp_path, db, key, backup_key)
    newer = backups.backup_create(
        now=NOW + timedelta(minutes=1),
        backup_dir=tmp_path / "bak",
        source_path=db,
        source_key=key,
        key_hex=backup_key,
    )

    assert backups.backup_resolve("latest", backup_dir=tmp_path / "bak") == newer.path


def test_latest_without_backups_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(BackupNotFound):
        backups.backup_resolve("latest", backup_dir=tmp_path / "none")
