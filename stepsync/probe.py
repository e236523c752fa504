"""`python -m stepsync.probe postgres URL`: exit 0 when the server answers (for make)."""

from __future__ import annotations

import sys


def postgres_reachable(url: str) -> bool:
    """Connect to the server's maintenance database; create the target DB if absent."""
    import psycopg
    from psycopg import sql

    base, _, name = url.rpartition("/")
    try:
        with psycopg.connect(
            f"{base}/postgres", connect_timeout=3, autocommit=True
        ) as c:
            exists = c.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error:
        return False
    return True


if __name__ == "__main__":
    sys.exit(0 if postgres_reachable(sys.argv[2]) else 1)
