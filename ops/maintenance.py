"""The maintenance lock file: while it exists the app answers 503 and jobs pause."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from ops.exceptions import MaintenanceBusy


def lock_path() -> Path:
    return Path(settings.MAINTENANCE_LOCK_FILE)


def maintenance_active() -> bool:
    """True while a maintenance operation (rotation, restore) holds the lock file."""
    return lock_path().exists()


@contextmanager
def maintenance_lock(*, operation: str) -> Iterator[Path]:
    """Create the lock file exclusively for the block; refuse if another holds it."""
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise MaintenanceBusy() from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(f"{operation} pid={os.getpid()}\n")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
