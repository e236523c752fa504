"""`manage.py sanitize --jsonl` follows DESIGN.md's contract and needs no DB or key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_sanitize(
    lines: list[str], *extra: str, raw: bytes = b"", **env_overrides: str
) -> subprocess.CompletedProcess[str]:
    """The command in a fresh process with no database key, no secret key and no
    strict-mode settings unless given; ``raw`` bytes are sent after the lines."""
    dropped = (
        "SECRET_KEY",
        "DATABASE_ENCRYPTION_KEY",
        "DATABASE_URL",
        "PHI_SANITIZER_STRICT_MODE",
        "PHI_CRITICAL_TYPES",
    )
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        DJANGO_SETTINGS_MODULE="stepsync.settings",
        SECRET_KEY_FILE="/nonexistent/secret",
        DATABASE_KEY_FILE="/nonexistent/key",
        **env_overrides,
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "sanitize", "--jsonl", *extra],
        input=("\n".join(lines) + "\n").encode() + raw,
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


def outputs(result: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_each_input_line_gives_one_output_line_with_the_contract_fields() -> None:
    result = run_sanitize(
        [
            json.dumps({"id": 1, "text": "mail a.b@example.com"}),
            json.dumps({"id": "x", "text": "12,000 steps today"}),
        ]
    )
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == [1, "x"]
    assert set(out[0]) == {"id", "sanitized", "blocked", "spans"}
    assert out[1]["sanitized"] == "12,000 steps today"


def test_span_offsets_index_the_original_text() -> None:
    text = "write to a.b@example.com please"
    out = json.loads(run_sanitize([json.dumps({"id": 1, "text": text})]).stdout)
    span = out["spans"][0]
    assert text[span["start"] : span["end"]] == "a.b@example.com"
    assert span["type"] == "EMAIL"


def test_runs_without_a_database_key_or_secret_key_file() -> None:
    result = run_sanitize([json.dumps({"id": 1, "text": "hi"})])
    assert result.returncode == 0, result.stderr


def test_strict_mode_marks_critical_types_blocked() -> None:
    line = json.dumps({"id": 1, "text": "ssn 123-45-6789"})
    out = json.loads(run_sanitize([line], "--strict").stdout)
    assert out["blocked"] is True
    assert "123-45-6789" not in out["sanitized"]


def test_strict_mode_follows_the_setting_when_no_flag_is_given() -> None:
    line = json.dumps({"id": 1, "text": "ssn 123-45-6789"})
    out = outputs(run_sanitize([line], PHI_SANITIZER_STRICT_MODE="true"))
    assert out[0]["blocked"] is True


def test_strict_mode_is_off_when_the_setting_is_off() -> None:
    line = json.dumps({"id": 1, "text": "ssn 123-45-6789"})
    out = outputs(run_sanitize([line]))
    assert out[0]["blocked"] is False


def test_no_strict_flag_overrides_the_setting() -> None:
    line = json.dumps({"id": 1, "text": "ssn 123-45-6789"})
    result = run_sanitize([line], "--no-strict", PHI_SANITIZER_STRICT_MODE="true")
    assert outputs(result)[0]["blocked"] is False


def test_critical_types_follow_the_setting() -> None:
    lines = [
        json.dumps({"id": 1, "text": "mail a.b@example.com"}),
        json.dumps({"id": 2, "text": "ssn 123-45-6789"}),
    ]
    result = run_sanitize(
        lines, PHI_SANITIZER_STRICT_MODE="true", PHI_CRITICAL_TYPES="EMAIL"
    )
    assert [o["blocked"] for o in outputs(result)] == [True, False]


def test_a_malformed_line_gives_an_error_line_and_the_run_goes_on() -> None:
    result = run_sanitize(
        [
            json.dumps({"id": 1, "text": "12,000 steps"}),
            "not json with 123-45-6789",
            json.dumps({"id": 7, "text": ["123-45-6789"]}),
            json.dumps(["123-45-6789"]),
            json.dumps({"id": 2, "text": "hi"}),
        ]
    )
    assert outputs(result) == [
        {"id": 1, "sanitized": "12,000 steps", "blocked": False, "spans": []},
        {"id": None, "error": "invalid_line"},
        {"id": 7, "error": "invalid_line"},
        {"id": None, "error": "invalid_line"},
        {"id": 2, "sanitized": "hi", "blocked": False, "spans": []},
    ]


def test_a_line_that_is_not_utf8_is_one_invalid_line() -> None:
    result = run_sanitize(
        [json.dumps({"id": 1, "text": "hi"})],
        raw=b"\xff\xfe 123-45-6789\n" + json.dumps({"id": 2, "text": "ok"}).encode(),
    )
    assert [o.get("error") for o in outputs(result)] == [None, "invalid_line", None]


def test_malformed_lines_are_never_echoed_and_fail_the_exit_status() -> None:
    result = run_sanitize(["not json with 123-45-6789", '{"text": "123-45-6789"'])
    assert result.returncode != 0
    assert "123-45-6789" not in result.stderr + result.stdout
