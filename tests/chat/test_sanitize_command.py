"""`manage.py sanitize --jsonl` follows DESIGN.md's contract and needs no DB or key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_sanitize(lines: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "DATABASE_ENCRYPTION_KEY", "DATABASE_URL")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="stepsync.settings",
        SECRET_KEY_FILE="/nonexistent/secret",
        DATABASE_KEY_FILE="/nonexistent/key",
    )
    return subprocess.run(
        [sys.executable, "manage.py", "sanitize", "--jsonl", *extra],
        input="\n".join(lines) + "\n",
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


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


def test_a_malformed_line_fails_without_echoing_its_content() -> None:
    result = run_sanitize(["not json with 123-45-6789"])
    assert result.returncode != 0
    assert "123-45-6789" not in result.stderr + result.stdout
