"""Give a pooled database connection back while a request waits on something else.

A chat turn awaits the LLM for seconds between its two database phases. With one
connection per request thread, 300 such turns hold 300 PostgreSQL connections
(max_connections is 100 here: "sorry, too many clients already" under
bench-load's llm-300). With Django's pool (settings.DATABASE_POOL_MAX_SIZE) a
phase hands its connection back when it ends, so connections are held only
while the database is in use. Without a pool (SQLCipher: persistent
per-thread connections) this does nothing.

A pool is not fork-safe: a forked child (the limit tests fork processes) would
take the parent's open connections from it and talk over the parent's sockets.
The child therefore forgets the pools it inherited and opens its own; the
inherited ones are kept referenced, never closed or collected there, because
closing a connection sends PostgreSQL a Terminate over the shared socket.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connections
from django.dispatch import receiver

_INHERITED: list[Any] = []  # the parent's pools, in a forked child


def release_pooled_connections() -> None:
    """Return this thread's pooled connections to their pools (outside any
    transaction; a connection inside one is left alone)."""
    if not _pools_configured():
        return
    for connection in connections.all(initialized_only=True):
        pool = getattr(connection, "pool", None)
        if pool is not None and not connection.in_atomic_block:
            connection.close()


@functools.lru_cache(maxsize=1)
def _pools_configured() -> bool:
    """Whether any database has a pool (read once; walking the connections
    through asgiref's locals twice per chat turn was ~1 % of its GIL time)."""
    return any(
        (db.get("OPTIONS") or {}).get("pool") for db in settings.DATABASES.values()
    )


@receiver(setting_changed)
def _databases_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "DATABASES":
        _pools_configured.cache_clear()


def _forget_inherited_pools() -> None:
    try:
        from django.db.backends.postgresql.base import DatabaseWrapper
    except ImportError:  # psycopg missing: no pools either
        return
    pools: dict[str, Any] = getattr(DatabaseWrapper, "_connection_pools", {})
    _INHERITED.extend(pools.values())
    pools.clear()
    for connection in connections.all(initialized_only=True):
        if connection.vendor == "postgresql" and connection.connection is not None:
            _INHERITED.append(connection.connection)
            connection.connection = None


os.register_at_fork(after_in_child=_forget_inherited_pools)
