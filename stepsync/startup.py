"""Start-up verification: refuse to serve when the database key is missing or wrong."""

from __future__ import annotations

import sys

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection


def verify_database() -> str | None:
    """Open the default database once; return a PHI-free fault message or None."""
    try:
        connection.ensure_connection()
    except ImproperlyConfigured as exc:
        return str(exc)
    except DatabaseError as exc:
        return f"the database cannot be opened ({type(exc).__name__})"
    finally:
        connection.close()
    return None


def system_check_errors() -> list[str]:
    """The errors of Django's system checks (ours included: encryption off without
    DEBUG, DEBUG with production hosts, a plain-http LLM URL), as "id: message"."""
    from django.core import checks

    found = checks.run_checks(include_deployment_checks=False)
    return [
        f"{m.id}: {m.msg}"
        for m in found
        if m.level >= checks.ERROR and not m.is_silenced()
    ]


def refuse_to_start_on_fault() -> None:
    """Print a clear one-line reason and exit with status 3 (no traceback)."""
    fault = verify_database()
    if fault is not None:
        print(f"stepsync: refusing to start: {fault}", file=sys.stderr, flush=True)
        raise SystemExit(3)
