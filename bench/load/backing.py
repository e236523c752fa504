"""Backing services of a multi-node run: a fresh PostgreSQL database, a Redis database.

The scale-out shape (tests/scaleout, README "Scale-out on PostgreSQL and Redis") runs
several app servers and one job runner on one PostgreSQL database and one Redis
logical database. A run creates a uniquely named database and drops it at the end,
and flushes its own Redis database number before and after, so runs never meet
each other's rows or keys.
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

POSTGRES_SERVER_URL = "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_SERVER_URL = "redis://127.0.0.1:6379"


def reachable(url: str) -> bool:
    """True when something accepts TCP connections at the URL's host and port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 0), timeout=0.5
        ):
            return True
    except OSError:
        return False


def _psycopg_url(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


@dataclass(frozen=True)
class PostgresDatabase:
    """One database on a PostgreSQL server; ``url`` is its DATABASE_URL."""

    server_url: str
    name: str

    @property
    def url(self) -> str:
        parts = urlsplit(self.server_url)
        return urlunsplit(parts._replace(path=f"/{self.name}"))

    def _admin(self, sql: str) -> None:
        import psycopg

        # CREATE/DROP DATABASE cannot run inside a transaction block.
        with psycopg.connect(_psycopg_url(self.server_url), autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> PostgresDatabase:
        self._admin(f'CREATE DATABASE "{self.name}"')
        return self

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def fresh_postgres_database(
    prefix: str = "stepsync_scaleout", server_url: str = POSTGRES_SERVER_URL
) -> PostgresDatabase:
    """Create a database named ``<prefix>_<random hex>`` and return it."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    return PostgresDatabase(server_url, name).create()


def redis_db_url(db: int, server_url: str = REDIS_SERVER_URL) -> str:
    """The URL of logical database ``db`` on the Redis server."""
    return f"{server_url.rstrip('/')}/{int(db)}"


def redis_flush(url: str) -> int:
    """FLUSHDB the logical database of ``url``; returns the keys it held."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        held = int(client.dbsize())
        client.flushdb()
        return held
    finally:
        client.close()


def redis_hash_field(url: str, key: str, name: str) -> bytes | None:
    """One field of a hash in the logical database of ``url`` (None when absent)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        value = client.hget(key, name)
        return value if isinstance(value, bytes) else None
    finally:
        client.close()
