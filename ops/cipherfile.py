"""Work on encrypted database files directly: open, count, check, export, fingerprint.

These helpers use their own sqlcipher3 connections (never Django's), so a maintenance
operation can hold exclusive access and throw its connection away on any error
(RELIABILITY.md §A.3). Keys are raw 256-bit hex values and are never logged.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlcipher3 import dbapi2 as Database

from stepsync.db.sqlcipher.base import key_statement, open_keyed

PLAINTEXT_HEADER = b"SQLite format 3\x00"
PAGE_NUMBER = re.compile(r"\bpage (\d+)\b", re.IGNORECASE)


@dataclass(frozen=True)
class IntegrityResult:
    """quick_check/integrity_check text, cipher_integrity_check's failures and the
    page numbers they name."""

    ok: bool
    check: str
    cipher_errors: list[str]
    pages: list[int] = field(default_factory=list)


def open_file(
    path: Path | str, key_hex: str, *, busy_ms: int = 200
) -> Database.Connection:
    """A keyed, verified autocommit connection with a short busy timeout."""
    conn = open_keyed(str(path), key_hex, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    return conn


def open_exclusive(
    path: Path | str, key_hex: str, *, busy_ms: int = 200
) -> Database.Connection:
    """Open and take SQLite's exclusive lock for this connection, kept until it
    closes (exclusive locking mode), or raise OperationalError.

    In WAL mode this is refused while any other connection has the file open, even
    an idle one. In DELETE mode an idle connection holds no lock and is NOT
    detected: callers go through ``ops.maintenance.exclusive_connection``.
    """
    conn = open_file(path, key_hex, busy_ms=busy_ms)
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute("COMMIT")
    except Database.Error:
        conn.close()
        raise
    return conn


def header_is_plaintext(path: Path | str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(16) == PLAINTEXT_HEADER


SCHEMAS = {"main"}


def table_names(conn: Database.Connection, schema: str = "main") -> list[str]:
    if schema not in SCHEMAS:
        raise ValueError("unknown schema")
    rows = conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' "  # noqa: S608 — fixed schema
        "AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [row[0] for row in rows]


def row_counts(conn: Database.Connection, schema: str = "main") -> dict[str, int]:
    """Rows per table (names come from sqlite_master and are quoted)."""
    counts = {}
    for name in table_names(conn, schema):
        quoted = '"' + name.replace('"', '""') + '"'
        # Names come from sqlite_master and are quoted as identifiers.
        sql = f"SELECT count(*) FROM {schema}.{quoted}"  # noqa: S608
        counts[name] = conn.execute(sql).fetchone()[0]
    return counts


def journal_mode(conn: Database.Connection) -> str:
    return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()


def integrity(conn: Database.Connection, *, full: bool = False) -> IntegrityResult:
    """quick_check (or integrity_check) plus cipher_integrity_check's failing pages.

    Each runs on its own: a corrupt page makes quick_check raise SQLITE_CORRUPT, and
    cipher_integrity_check must still name the page.
    """
    pragma = "integrity_check" if full else "quick_check"
    try:
        rows = conn.execute(f"PRAGMA {pragma}").fetchall()
        check = "; ".join(str(row[0]) for row in rows)[:200]
    except Database.DatabaseError as exc:
        check = type(exc).__name__
    try:
        cipher = [
            str(r[0])[:120] for r in conn.execute("PRAGMA cipher_integrity_check")
        ]
    except Database.DatabaseError as exc:
        cipher = [type(exc).__name__]
    pages = sorted({int(m) for line in cipher for m in PAGE_NUMBER.findall(line)})
    return IntegrityResult(
        ok=check == "ok" and not cipher, check=check, cipher_errors=cipher, pages=pages
    )


def attach_statement(path: Path | str, alias: str, key_hex: str) -> str:
    """ATTACH with an explicit raw key; never without KEY (that reuses the main key)."""
    quoted = str(path).replace("'", "''")
    return f"ATTACH DATABASE '{quoted}' AS {alias} KEY \"x'{key_hex}'\""


def export_to(conn: Database.Connection, dest: Path | str, key_hex: str) -> None:
    """sqlcipher_export the open database into ``dest`` encrypted with ``key_hex``."""
    conn.execute(attach_statement(dest, "export_target", key_hex))
    try:
        conn.execute("SELECT sqlcipher_export('export_target')").fetchall()
    finally:
        conn.execute("DETACH DATABASE export_target")


def rekey(conn: Database.Connection, new_key_hex: str) -> None:
    """PRAGMA rekey with a raw key; the caller closes ``conn`` on any error."""
    conn.execute(key_statement(new_key_hex).replace("PRAGMA key", "PRAGMA rekey"))


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def key_fingerprint(key_hex: str) -> str:
    """A short one-way label for a key, to match key records (never the key)."""
    return hashlib.sha256(b"stepsync-key-id:" + bytes.fromhex(key_hex)).hexdigest()[:16]


def remove_sidecars(path: Path | str) -> None:
    """Delete a database's -wal and -shm (only with the app stopped: §A.4)."""
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
