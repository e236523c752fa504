"""backup_db, verify_backup, restore_db and rotate_db_key run end to end as commands
(subprocesses) on a real SQLCipher file with the project's schema: exit code, the
audit row and the outcome."""

from __future__ import annotations

import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ops.cipherfile import open_file, rekey
from stepsync.db.sqlcipher.errors import DatabaseKeyError
from tests.ops.conftest import database_file, manage
from tests.ops.scratchdb import count_rows, migrated_copy

# A moment whose key id ("k20261203072024") and backup name hold long digit runs,
# the identifier shapes the audit guard refuses as targets.
NOW = "2026-12-03T07:20:24+00:00"

pytestmark = [pytest.mark.sqlcipher_only, pytest.mark.django_db]


@dataclass
class Live:
    db: Path
    key_file: Path
    backup_dir: Path
    env: dict[str, str]

    @property
    def key(self) -> str:
        return self.key_file.read_text().strip()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = open_file(self.db, self.key)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


def _live(tmp_path: Path, *, wal: bool = True) -> Live:
    key = os.environ["DATABASE_ENCRYPTION_KEY"]
    db = tmp_path / "live.db"
    migrated_copy(database_file(), key, db)
    key_file = tmp_path / "database.key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_ENCRYPTION_KEY", "PROMETHEUS_MULTIPROC_DIR")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="stepsync.settings",
        DATABASE_NAME=str(db),
        DATABASE_KEY_FILE=str(key_file),
        BACKUP_DIR=str(tmp_path / "bak"),
        MAINTENANCE_LOCK_FILE=str(tmp_path / "maintenance.lock"),
        AUDIT_HEAD_EXPORT_PATH=str(tmp_path / "audit_heads.jsonl"),
        ENABLE_WAL_MODE="true" if wal else "false",
        LOG_LEVEL="WARNING",
    )
    env.pop("DATABASE_URL", None)
    return Live(db, key_file, tmp_path / "bak", env)


def _audit(live: Live, action: str) -> list[tuple[Any, ...]]:
    return live.query(
        "SELECT target_type, target_id, outcome FROM compliance_auditevent "
        "WHERE action = ?",
        action,
    )


def _opens(db: Path, key: str) -> bool:
    try:
        open_file(db, key).close()
    except DatabaseKeyError:
        return False
    return True


def test_backup_db_command_writes_a_recorded_audited_backup(tmp_path: Path) -> None:
    live = _live(tmp_path)

    done = manage("backup_db", "--now", NOW, env=live.env)

    assert done.returncode == 0, done.stderr[-2000:]
    [(record_id, path)] = live.query("SELECT id, path FROM ops_backuprecord")
    assert Path(path).is_file()
    assert Path(path).parent == live.backup_dir
    assert _audit(live, "backup") == [("backup", str(record_id), "success")]


def test_verify_backup_command_accepts_the_latest_backup(tmp_path: Path) -> None:
    live = _live(tmp_path)
    manage("backup_db", "--now", NOW, env=live.env)

    done = manage("verify_backup", "latest", env=live.env)

    assert done.returncode == 0, done.stderr[-2000:]
    assert "verify_backup ok" in done.stdout


def test_verify_backup_command_rejects_a_damaged_backup(tmp_path: Path) -> None:
    live = _live(tmp_path)
    manage("backup_db", "--now", NOW, env=live.env)
    [backup] = live.backup_dir.glob("*.sqlcipher")
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0xFF
    backup.write_bytes(bytes(data))

    done = manage("verify_backup", "latest", env=live.env)

    assert done.returncode == 1
    assert "code=backup_invalid" in done.stderr


def test_restore_db_command_drops_later_rows_and_is_audited(tmp_path: Path) -> None:
    live = _live(tmp_path)
    manage("backup_db", "--now", NOW, env=live.env)
    conn = open_file(live.db, live.key)
    conn.executemany(
        "INSERT INTO ops_metricsample (series, value, created_at) VALUES (?, ?, ?)",
        [("after_backup", 1.0, "2026-12-03 08:00:00")] * 5,
    )
    conn.close()

    done = manage("restore_db", "latest", "--yes", "--now", NOW, env=live.env)

    assert done.returncode == 0, done.stderr[-2000:]
    assert count_rows(live.db, live.key, "ops_metricsample") == 0
    [(record_id,)] = live.query("SELECT id FROM ops_backuprecord")
    assert _audit(live, "restore") == [("backup", str(record_id), "success")]


def test_rotate_db_key_command_rotates_records_and_audits(tmp_path: Path) -> None:
    live = _live(tmp_path)
    old = live.key

    done = manage("rotate_db_key", "--now", NOW, env=live.env)

    assert done.returncode == 0, done.stderr[-2000:]
    new = live.key
    assert new != old
    assert _opens(live.db, old) is False
    assert _opens(live.db, new) is True
    [(record_id, key_id)] = live.query(
        "SELECT id, key_id FROM ops_keyrecord WHERE retired_at IS NULL"
    )
    assert key_id == "k20261203072024"
    assert _audit(live, "key_rotation") == [("database_key", str(record_id), "success")]
    [(backup_path,)] = live.query("SELECT path FROM ops_backuprecord")
    assert Path(backup_path).is_file()
    assert "step=key_file_written" in done.stdout


def test_rotate_db_key_command_refuses_while_another_connection_is_open_in_delete_mode(
    tmp_path: Path,
) -> None:
    live = _live(tmp_path, wal=False)
    conn = open_file(live.db, live.key)
    conn.execute("PRAGMA journal_mode = DELETE").fetchone()
    conn.execute("SELECT count(*) FROM ops_alert").fetchone()
    old = live.key
    try:
        done = manage("rotate_db_key", "--now", NOW, env=live.env)
    finally:
        conn.close()

    assert done.returncode == 1
    assert "code=database_in_use" in done.stderr
    assert live.key == old
    assert _opens(live.db, old) is True


def test_commands_leave_no_plaintext_file(tmp_path: Path) -> None:
    live = _live(tmp_path)
    manage("backup_db", "--now", NOW, env=live.env)
    manage("rotate_db_key", env=live.env)

    for path in [live.db, *live.backup_dir.glob("*.sqlcipher")]:
        with pytest.raises(sqlite3.DatabaseError):
            sqlite3.connect(path).execute("SELECT * FROM sqlite_master").fetchall()


def _crash_after_rekey(live: Live) -> str:
    """What an interrupted rotation leaves: the file on a new key, kept only in
    ``<key file>.pending``."""
    new = secrets.token_hex(32)
    pending = live.key_file.with_name(live.key_file.name + ".pending")
    pending.write_text(new + "\n")
    pending.chmod(0o600)
    conn = open_file(live.db, live.key)
    rekey(conn, new)
    conn.close()
    return new


def test_rotate_db_key_after_a_crash_names_the_file_to_use(tmp_path: Path) -> None:
    live = _live(tmp_path)
    _crash_after_rekey(live)

    done = manage("rotate_db_key", env=live.env)

    assert done.returncode == 1
    assert "code=pending_key_found" in done.stderr
    assert "database.key.pending" in done.stderr
    assert "ops.W001" in done.stderr


def test_rotate_db_key_finish_installs_the_pending_key(tmp_path: Path) -> None:
    live = _live(tmp_path)
    new = _crash_after_rekey(live)

    done = manage("rotate_db_key", "--finish", "--now", NOW, env=live.env)

    assert done.returncode == 0, done.stderr[-2000:]
    assert "pending=pending" in done.stdout
    assert live.key == new
    assert _opens(live.db, new) is True
