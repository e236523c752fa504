"""A small encrypted scratch database (not the test DB) for backup and rotation tests."""

from __future__ import annotations

import secrets
from pathlib import Path

from ops.cipherfile import open_file


def make_scratch_db(path: Path, *, rows: int = 50) -> str:
    """Create an encrypted WAL database with table ``t``; return its key."""
    key = secrets.token_hex(32)
    conn = open_file(path, key)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany(
        "INSERT INTO t (v) VALUES (?)", [(f"row {i}",) for i in range(rows)]
    )
    conn.close()
    return key


def count_rows(path: Path, key: str) -> int:
    conn = open_file(path, key)
    try:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        conn.close()
