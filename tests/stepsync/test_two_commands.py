"""The README's two set-up commands exist in the Makefile, and CI runs `make test`."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from bench.load.harness import free_port

ROOT = Path(__file__).resolve().parents[2]


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, flags=re.MULTILINE))


def test_readme_gives_make_run_and_make_test_first() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make run" in first_block
    assert "make test" in first_block


def test_makefile_provides_both_commands() -> None:
    assert {"run", "test"} <= make_targets()


def test_ci_script_calls_make_test_and_requires_the_services() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "make test" in script
    assert "set -euo pipefail" in script
    assert "REQUIRE_POSTGRES=1" in script


def test_env_example_lists_every_contract_variable() -> None:
    names = set(
        re.findall(
            r"^([A-Z][A-Z0-9_]+)=",
            (ROOT / ".env.example").read_text(),
            flags=re.MULTILINE,
        )
    )
    required = {
        "GROQ_API_KEY",
        "GROQ_API_BASE_URL",
        "GROQ_MODEL",
        "DATABASE_NAME",
        "DATABASE_ENCRYPTION_ENABLED",
        "PHI_SANITIZER_STRICT_MODE",
        "ENABLE_WAL_MODE",
        "MAX_MESSAGES_PER_SESSION",
        "CLEANUP_INTERVAL_MINUTES",
        "SESSION_TIMEOUT_HOURS",
        "CIRCUIT_BREAKER_FAILURE_THRESHOLD",
        "RATE_LIMIT_CALLS_PER_HOUR",
        "RATE_LIMIT_CALLS_PER_USER_HOUR",
        "DATA_RETENTION_DAYS",
        "DATABASE_ENCRYPTION_KEY",
        "DATABASE_KEY_FILE",
        "DATABASE_URL",
        "DEBUG",
    }
    assert required <= names


def test_every_setting_read_from_the_environment_is_in_env_example() -> None:
    documented = set(
        re.findall(
            r"^([A-Z][A-Z0-9_]+)=",
            (ROOT / ".env.example").read_text(),
            flags=re.MULTILINE,
        )
    )
    used: set[str] = set()
    for path in ROOT.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        used |= set(
            re.findall(r"env(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]+)\"", path.read_text())
        )
    assert used - documented == set()


def _clean_env() -> dict[str, str]:
    """What a new user's shell has: no test settings, no database or Redis URLs."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}
    # The suite's own virtualenv must not shadow the one make run creates.
    paths = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(p for p in paths if ".venv" not in p)
    return env


def _wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return -1
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status)
        except OSError:
            time.sleep(0.5)
    return 0


@pytest.mark.slow
@pytest.mark.sqlcipher_only
def test_make_run_on_a_fresh_clone_serves_the_start_page(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    port = free_port()
    log = (tmp_path / "make-run.log").open("wb")
    proc = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=clone,
        env=_clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        live = _wait_for(f"http://127.0.0.1:{port}/health/live", proc, 600)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            status, body = page.status, page.read().decode()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()

    assert live == 200, (tmp_path / "make-run.log").read_text()[-2000:]
    assert status == 200
    assert "Step Sync" in body
    key_file = clone / "var" / "database.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (clone / "var" / "stepsync.db").read_bytes()[:16] != b"SQLite format 3\x00"
