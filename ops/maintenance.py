"""The maintenance protocol: a lock file (the app answers 503 and jobs pause while it
exists) and the proof that nobody else has the database file open.

SQLite alone cannot prove exclusive access in rollback-journal (DELETE) mode: an
idle connection holds no lock there, so ``BEGIN EXCLUSIVE`` succeeds beside it, and
a rekey would then break it (RELIABILITY.md §A.3). So rotation and restore require
the lock file held by this process and no open descriptor on the database (or its
-wal/-shm/-journal) in any process we can inspect (``/proc``), before SQLite's own
exclusive lock is taken.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from sqlcipher3 import dbapi2 as Database

from ops import cipherfile
from ops.exceptions import DatabaseInUse, MaintenanceBusy, MaintenanceRequired

SIDECARS = ("", "-wal", "-shm", "-journal")


def lock_path() -> Path:
    return Path(settings.MAINTENANCE_LOCK_FILE)


def maintenance_active() -> bool:
    """True while a maintenance operation (rotation, restore) holds the lock file."""
    return lock_path().exists()


def lock_held_here() -> bool:
    """True when the lock file exists and names this process."""
    try:
        text = lock_path().read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return False
    return f" pid={os.getpid()}\n" in text


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


def open_descriptors(db_path: Path) -> list[int] | None:
    """PIDs (repeated per descriptor, this process included) holding ``db_path`` or
    its sidecars open; None when /proc is not available (not Linux).

    Processes of other users cannot be inspected and are not listed: run the app
    and the maintenance commands as the same user.
    """
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return None
    base = os.path.realpath(db_path)
    targets = {base + suffix for suffix in SIDECARS}
    found: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:  # gone, or another user's process
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in targets:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def exclusive_connection(db_path: Path, key_hex: str) -> Database.Connection:
    """A connection holding SQLite's exclusive lock, opened only after proving that
    nobody else has the file open (the module doc). The caller closes it.

    Raises MaintenanceRequired without the lock file held here, DatabaseInUse when
    another descriptor or lock exists, DatabaseKeyError when the key is wrong.
    Without /proc only WAL mode can be proven exclusive (by SQLite's lock alone).
    """
    if not lock_held_here():
        raise MaintenanceRequired()
    holders = open_descriptors(db_path)
    if holders:
        raise DatabaseInUse()
    try:
        conn = cipherfile.open_exclusive(db_path, key_hex)
    except Database.OperationalError:
        raise DatabaseInUse() from None
    if holders is None and cipherfile.journal_mode(conn) != "wal":
        conn.close()
        raise DatabaseInUse(
            "Cannot prove that no other connection is open (no /proc, and the "
            "database is not in WAL mode); stop every process and use WAL mode."
        )
    return conn
