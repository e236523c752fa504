"""Database benchmark: the cost of opening the encrypted database, and of writing to it.

Prints medians: open+verify with the project's raw 256-bit key (what the backend does
on every new connection) against a passphrase key (PBKDF2, what it must never do),
and 1-row insert transactions through sqlcipher3 (keyed) against the stdlib sqlite3
module, both in WAL mode with synchronous=NORMAL. Works in a temporary folder.

Run: .venv/bin/python bench/bench_db.py
"""

from __future__ import annotations

import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlcipher3 import dbapi2 as sqlcipher  # noqa: E402

from stepsync.db.sqlcipher.base import open_keyed  # noqa: E402

OPENS = 200
PASSPHRASE_OPENS = 10
INSERTS = 3000
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


def _median_ms(action: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _open_passphrase(path: Path, passphrase: str) -> None:
    conn = sqlcipher.connect(str(path))
    conn.execute(f"PRAGMA key = '{passphrase}'")
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    conn.close()


def _create(path: Path, setup: Callable[[], Any]) -> None:
    conn = setup()
    for pragma in PRAGMAS:
        conn.execute(pragma)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    conn.commit()
    conn.close()


def _inserts_per_second(connect: Callable[[], Any]) -> float:
    conn = connect()
    for pragma in PRAGMAS:
        conn.execute(pragma)
    body = "my steps stopped syncing on my phone " * 4
    start = time.perf_counter()
    for _ in range(INSERTS):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (body) VALUES (?)", (body,))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return INSERTS / elapsed


def main() -> None:
    key = secrets.token_hex(32)
    passphrase = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="bench-db-") as folder:
        raw_db, pass_db, plain_db = (
            Path(folder) / name for name in ("raw.db", "pass.db", "plain.db")
        )
        _create(raw_db, lambda: open_keyed(str(raw_db), key))

        def pass_setup() -> Any:
            conn = sqlcipher.connect(str(pass_db))
            conn.execute(f"PRAGMA key = '{passphrase}'")
            return conn

        _create(pass_db, pass_setup)
        _create(plain_db, lambda: sqlite3.connect(str(plain_db)))

        raw_ms = _median_ms(lambda: open_keyed(str(raw_db), key).close(), OPENS)
        pass_ms = _median_ms(
            lambda: _open_passphrase(pass_db, passphrase), PASSPHRASE_OPENS
        )
        plain_ms = _median_ms(lambda: sqlite3.connect(str(plain_db)).close(), OPENS)
        print(f"open + verify, raw 256-bit key : {raw_ms:8.3f} ms (median of {OPENS})")
        print(
            f"open + verify, passphrase      : {pass_ms:8.3f} ms "
            f"(median of {PASSPHRASE_OPENS}; PBKDF2, never used)"
        )
        print(f"open, stdlib sqlite3 (plain)   : {plain_ms:8.3f} ms")
        encrypted = _inserts_per_second(lambda: open_keyed(str(raw_db), key))
        plain = _inserts_per_second(
            lambda: sqlite3.connect(str(plain_db), isolation_level=None)
        )
        print(
            f"1-row insert transactions      : {encrypted:,.0f}/s encrypted, "
            f"{plain:,.0f}/s plain, ratio {encrypted / plain:.2f}"
        )


if __name__ == "__main__":
    main()
