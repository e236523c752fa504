"""Start-up refuses a missing or wrong database key with one clear line, no traceback."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from stepsync.db.sqlcipher.base import open_keyed

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], **env_overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "stepsync.settings"}
    env.update(env_overrides)
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def encrypted_file(tmp_path: Path) -> tuple[Path, str]:
    key = secrets.token_hex(32)
    path = tmp_path / "app.db"
    conn = open_keyed(str(path), key)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    return path, key


def test_server_refuses_to_start_with_a_wrong_key(
    encrypted_file: tuple[Path, str],
) -> None:
    path, _ = encrypted_file
    wrong = secrets.token_hex(32)
    result = run(
        ["-m", "stepsync.serve", "--port", "0"],
        DATABASE_NAME=str(path),
        DATABASE_ENCRYPTION_KEY=wrong,
    )
    assert result.returncode == 3
    assert "DATABASE_ENCRYPTION_KEY" in result.stderr
    assert "wrong key" in result.stderr
    assert wrong not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_server_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    missing = tmp_path / "absent.key"
    result = run(
        ["-m", "stepsync.serve", "--port", "0"],
        DATABASE_NAME=str(tmp_path / "app.db"),
        DATABASE_ENCRYPTION_KEY="",
        DATABASE_KEY_FILE=str(missing),
    )
    assert result.returncode == 3
    assert "DATABASE_ENCRYPTION_KEY is not set" in result.stderr
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_key_is_refused_naming_the_rule(tmp_path: Path) -> None:
    result = run(
        ["manage.py", "migrate", "--noinput"],
        DATABASE_NAME=str(tmp_path / "app.db"),
        DATABASE_ENCRYPTION_KEY="not-a-hex-key-" + "z" * 50,
    )
    assert result.returncode != 0
    assert "exactly 64 hexadecimal characters" in result.stderr
    assert "z" * 50 not in result.stderr
    assert "Traceback" not in result.stderr


def test_management_commands_refuse_a_wrong_key_without_traceback(
    encrypted_file: tuple[Path, str],
) -> None:
    path, _ = encrypted_file
    result = run(
        ["manage.py", "migrate", "--noinput"],
        DATABASE_NAME=str(path),
        DATABASE_ENCRYPTION_KEY=secrets.token_hex(32),
    )
    assert result.returncode == 3
    assert "does not open the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_encryption_disabled_is_refused_unless_debug(tmp_path: Path) -> None:
    result = run(
        ["manage.py", "check"],
        DATABASE_NAME=str(tmp_path / "plain.db"),
        DATABASE_ENCRYPTION_ENABLED="false",
        DEBUG="false",
    )
    assert result.returncode != 0
    assert "stepsync.E001" in result.stderr


def test_the_server_refuses_to_start_with_encryption_disabled_and_debug_off(
    tmp_path: Path,
) -> None:
    result = run(
        ["-m", "stepsync.serve", "--port", "0", "--no-jobs"],
        DATABASE_NAME=str(tmp_path / "plain.db"),
        DATABASE_ENCRYPTION_ENABLED="false",
        DEBUG="false",
    )
    assert result.returncode == 3
    assert "stepsync.E001" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "plain.db").exists()


def test_the_server_refuses_to_start_with_debug_and_production_hosts(
    encrypted_file: tuple[Path, str],
) -> None:
    path, key = encrypted_file
    result = run(
        ["-m", "stepsync.serve", "--port", "0", "--no-jobs"],
        DATABASE_NAME=str(path),
        DATABASE_ENCRYPTION_KEY=key,
        DEBUG="true",
        ALLOWED_HOSTS="stepsync.example.org",
    )
    assert result.returncode == 3
    assert "stepsync.E004" in result.stderr
    assert key not in result.stderr + result.stdout


def test_encryption_disabled_is_allowed_with_debug(tmp_path: Path) -> None:
    result = run(
        ["manage.py", "check"],
        DATABASE_NAME=str(tmp_path / "plain.db"),
        DATABASE_ENCRYPTION_ENABLED="false",
        DEBUG="true",
    )
    assert result.returncode == 0, result.stderr


def test_deploy_check_passes_with_a_production_like_environment(tmp_path: Path) -> None:
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="chat.example.org",
        SECURE_SSL_REDIRECT="true",
        SECURE_COOKIES="true",
        SECURE_HSTS_PRELOAD="true",
        DEBUG="false",
    )
    assert result.returncode == 0, result.stderr + result.stdout


def server_process_prints(encrypted_file: tuple[Path, str], probe: str) -> list[str]:
    """What ``probe`` prints (split) in a process that imported stepsync.asgi."""
    path, key = encrypted_file
    result = run(
        ["-c", "import stepsync.asgi\n" + probe],
        DATABASE_NAME=str(path),
        DATABASE_ENCRYPTION_KEY=key,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_server_process_freezes_its_start_up_objects_and_runs_the_checkpointer(
    encrypted_file: tuple[Path, str],
) -> None:
    probe = (
        "import gc; "
        "from stepsync.db.sqlcipher import checkpointer; "
        "print(gc.get_freeze_count() > 10000, checkpointer.active())"
    )
    assert server_process_prints(encrypted_file, probe) == ["True", "True"]


def test_a_server_process_loads_the_views_and_the_llm_transport_before_serving(
    encrypted_file: tuple[Path, str],
) -> None:
    probe = (
        "import sys; "
        "print(*(m in sys.modules for m in "
        "('chat.api_messages', 'rest_framework.request', 'httpx_aiohttp')))"
    )
    assert server_process_prints(encrypted_file, probe) == ["True", "True", "True"]


def test_a_server_process_checks_its_connections_when_requests_end_not_start(
    encrypted_file: tuple[Path, str],
) -> None:
    probe = (
        "from django.core import signals; "
        "from django.db import close_old_connections as c; "
        "print(len(signals.request_started._live_receivers(None)[0]), "
        "c in signals.request_finished._live_receivers(None)[0])"
    )
    assert server_process_prints(encrypted_file, probe) == ["0", "True"]


def test_a_server_process_runs_no_request_end_receiver_that_has_nothing_to_do(
    encrypted_file: tuple[Path, str],
) -> None:
    probe = (
        "from django.core import signals; "
        "from django.core.cache import close_caches; "
        "from django.db import reset_queries; "
        "live = signals.request_finished._live_receivers(None)[0]; "
        "print(reset_queries in live, close_caches in live)"
    )
    assert server_process_prints(encrypted_file, probe) == ["False", "False"]
