"""The README's two set-up commands exist in the Makefile, and CI runs `make test`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_a_fresh_clone_has_the_files_the_two_commands_need(tmp_path: Path) -> None:
    subprocess.run(
        ["git", "clone", "-q", str(ROOT), str(tmp_path / "clone")],
        check=True,
        timeout=120,
    )
    clone = tmp_path / "clone"
    if not (clone / "Makefile").exists():
        pytest.skip("nothing committed yet")
    dry = subprocess.run(
        ["make", "-n", "run", "test"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert dry.returncode == 0, dry.stderr
    assert "pytest" in dry.stdout
    assert "stepsync.serve" in dry.stdout
