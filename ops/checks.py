"""System checks of the ops app: a pending database key left by a rotation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning, register

from ops.keyrotation import pending_advice, pending_path, pending_state
from ops.selectors import uses_sqlcipher
from stepsync.secrets import DATABASE_KEY, SecretError, key_file_path, read_secret


def pending_key_warnings(
    *, db_path: Path, key_file: Path, current_key: str | None
) -> list[CheckMessage]:
    """ops.W001 when ``<key file>.pending`` exists; the hint names the file whose key
    opens the database (never a key)."""
    if not pending_path(key_file).exists():
        return []
    state = pending_state(db_path=db_path, key_file=key_file, current_key=current_key)
    return [
        Warning(
            "A database key rotation was interrupted (a pending key file exists).",
            hint=pending_advice(state=state, key_file=key_file),
            id="ops.W001",
        )
    ]


@register("ops")
def check_pending_database_key(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Runs with every management command (``make run`` migrates first)."""
    if not uses_sqlcipher():
        return []
    if os.environ.get(DATABASE_KEY.env, "").strip():
        return []
    try:
        current: str | None = read_secret(DATABASE_KEY)
    except SecretError:
        current = None
    return pending_key_warnings(
        db_path=Path(settings.DATABASES["default"]["NAME"]),
        key_file=key_file_path(DATABASE_KEY),
        current_key=current,
    )
