"""SQLCipher backend: Django's SQLite backend with the key issued first on every connection.

A subclass that only swaps ``Database`` silently writes plaintext (RELIABILITY.md §1.1,
§A.1): Django's sqlite3 backend calls the stdlib module directly. This module
re-registers the adapters on sqlcipher3, connects through it, keys the connection with a
raw 256-bit key (no PBKDF2 cost per connection), verifies the key at once, and only then
applies the pragmas.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import time
from collections.abc import Mapping
from itertools import tee
from typing import Any

from django.conf import settings
from django.db.backends.sqlite3 import base as sqlite_base
from django.db.backends.sqlite3._functions import register as register_functions
from django.db.utils import OperationalError
from django.utils.asyncio import async_unsafe
from django.utils.dateparse import parse_date, parse_datetime, parse_time
from sqlcipher3 import dbapi2 as Database

from stepsync.secrets import DATABASE_KEY, SecretError, read_secret

from . import checkpointer
from .errors import DatabaseKeyError
from .writer_gate import GATE

Database.register_converter("bool", b"1".__eq__)
Database.register_converter("date", sqlite_base.decoder(parse_date))
Database.register_converter("time", sqlite_base.decoder(parse_time))
Database.register_converter("datetime", sqlite_base.decoder(parse_datetime))
Database.register_converter("timestamp", sqlite_base.decoder(parse_datetime))
Database.register_adapter(decimal.Decimal, str)
Database.register_adapter(datetime.date, sqlite_base.adapt_date)
Database.register_adapter(datetime.datetime, sqlite_base.adapt_datetime)

SQLITE_NOTADB = 26


def key_statement(key_hex: str) -> str:
    """The PRAGMA that sets a raw key; the value is validated as 64 hex characters."""
    return f"PRAGMA key = \"x'{key_hex}'\""


def open_keyed(path: str, key_hex: str, **params: Any) -> Database.Connection:
    """Open ``path`` with sqlcipher3, issue the key first and verify it; close on error."""
    conn = Database.connect(path, **params)
    try:
        conn.execute(key_statement(key_hex))
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except Database.DatabaseError as exc:
        conn.close()
        if getattr(exc, "sqlite_errorcode", None) == SQLITE_NOTADB:
            raise DatabaseKeyError(
                "key_invalid",
                f"{DATABASE_KEY.env} (or the key file) does not open the database "
                "file: wrong key, or the file is not an encrypted database",
            ) from None
        raise
    return conn


class SQLCipherCursorWrapper(Database.Cursor):
    """Django's format/pyformat-to-qmark/named conversion on a sqlcipher3 cursor."""

    convert_query = sqlite_base.SQLiteCursorWrapper.convert_query

    def execute(self, query: str, params: Any = None) -> Any:
        if params is None:
            return super().execute(query)
        if isinstance(params, Mapping):
            query = self.convert_query(query, param_names=list(params))
        else:
            query = _qmark(query)
        return super().execute(query, params)

    def executemany(self, query: str, param_list: Any) -> Any:
        peekable, param_list = tee(iter(param_list))
        if (params := next(peekable, None)) and isinstance(params, Mapping):
            param_names = list(params)
        else:
            param_names = None
        query = self.convert_query(query, param_names=param_names)
        return super().executemany(query, param_list)


@functools.lru_cache(maxsize=1024)
def _qmark(query: str) -> str:
    """Django's "format" to "qmark" conversion (a regular expression over the
    whole statement), once per distinct statement: a chat turn runs the same
    few statements every time (stepsync.db.statements), ~20 of them."""
    return sqlite_base.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")


POLL_SECONDS = 0.0005


class DatabaseWrapper(sqlite_base.DatabaseWrapper):
    """SQLite wrapper whose connections are SQLCipher connections keyed before use."""

    display_name = "SQLCipher"
    Database = Database
    init_commands: list[str]  # set in Django's get_connection_params(); unstubbed
    transaction_mode: str | None  # set in Django's sqlite3 __init__; unstubbed

    @async_unsafe
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if self.is_in_memory_db():
            raise DatabaseKeyError(
                "in_memory", "SQLCipher needs a database file, not an in-memory DB"
            )
        try:
            key_hex = read_secret(DATABASE_KEY)
        except SecretError as exc:
            raise DatabaseKeyError("key_missing", str(exc)) from None
        params = dict(conn_params)
        database = params.pop("database")
        conn = open_keyed(database, key_hex, **params)
        register_functions(conn)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA legacy_alter_table = OFF")
        for init_command in self.init_commands:
            if init_command := init_command.strip():
                conn.execute(init_command)
        if checkpointer.active():  # its thread checkpoints, not our commits
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        return conn

    def create_cursor(self, name: str | None = None) -> Any:
        return self.connection.cursor(factory=SQLCipherCursorWrapper)

    # --- write transactions pass the process's gate (writer_gate) ----------------
    holds_gate = False

    def _start_transaction_under_autocommit(self) -> None:
        timeout = settings.DATABASE_BUSY_TIMEOUT_MS / 1000
        if not GATE.acquire(timeout):
            raise OperationalError("database is locked")
        self.holds_gate = True
        try:
            with self.wrap_database_errors:
                self._begin_polling(time.monotonic() + timeout)
        except BaseException:
            self._open_gate()
            raise

    def _begin_polling(self, deadline: float) -> None:
        """BEGIN, polled every POLL_SECONDS instead of in SQLite's busy handler,
        whose sleeps grow to 100 ms: the other worker's release is seen within a
        fraction of a millisecond. Only the gate's holder polls (one per process)."""
        raw = self.connection
        raw.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    raw.execute(f"BEGIN {self.transaction_mode or ''}")
                    return
                except Database.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() >= deadline:
                        raise
                time.sleep(POLL_SECONDS)
        finally:
            raw.execute(f"PRAGMA busy_timeout = {settings.DATABASE_BUSY_TIMEOUT_MS}")

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]  # as above
        finally:
            self._open_gate()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]  # as above
        finally:
            self._open_gate()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]  # as above
        finally:
            self._open_gate()

    def _open_gate(self) -> None:
        if self.holds_gate:
            self.holds_gate = False
            GATE.release()
