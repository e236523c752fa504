"""Scratch SQLCipher files for backup, rotation and integrity tests (never the test DB).

``make_scratch_db`` builds a small keyed database with one table; ``migrated_copy``
exports the migrated test database (committed state) to a new file with the same
key, for commands that need the project's real schema.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from ops.cipherfile import export_to, open_file

PAGE_SIZE = 4096


def make_scratch_db(path: Path, *, rows: int = 50, journal: str = "wal") -> str:
    """Create an encrypted database with table ``t``; return its key."""
    key = secrets.token_hex(32)
    conn = open_file(path, key)
    conn.execute(f"PRAGMA journal_mode = {'WAL' if journal == 'wal' else 'DELETE'}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany(
        "INSERT INTO t (v) VALUES (?)", [(f"row {i} " + "x" * 40,) for i in range(rows)]
    )
    conn.close()
    return key


def count_rows(path: Path, key: str, table: str = "t") -> int:
    conn = open_file(path, key)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
    finally:
        conn.close()


def migrated_copy(source: Path, key: str, dest: Path) -> None:
    """Export the committed state of ``source`` (the migrated test DB) to ``dest``."""
    conn = open_file(source, key, busy_ms=5000)
    try:
        export_to(conn, dest, key)
    finally:
        conn.close()


def flip_byte(path: Path, *, page: int, at: int = 200) -> None:
    """Flip one byte inside page ``page`` (1-based) of ``path``."""
    data = bytearray(path.read_bytes())
    data[(page - 1) * PAGE_SIZE + at] ^= 0xFF
    path.write_bytes(bytes(data))
