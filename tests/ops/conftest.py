"""Helpers for the ops tests: the test database file, subprocess environments."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_file() -> Path:
    return Path(connection.settings_dict["NAME"])


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child Django process that uses this test run's database."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "stepsync.settings_test"
    if connection.vendor == "postgresql":
        base = env.get("DATABASE_URL", "")
        env["DATABASE_URL"] = (
            base.rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
        )
    else:
        env["DATABASE_NAME"] = str(database_file())
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    return env


def run_python(code: str, *, env: dict[str, str], timeout: float = 60) -> Any:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def manage(*args: str, env: dict[str, str], timeout: float = 60) -> Any:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def bearer() -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {settings.HEALTH_CHECK_TOKEN}"}


@pytest.fixture
def maintenance(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """The maintenance lock held by this process (a lock file under tmp_path)."""
    from ops.maintenance import maintenance_lock

    settings.MAINTENANCE_LOCK_FILE = tmp_path / "maintenance.lock"
    with maintenance_lock(operation="test") as path:
        yield path
