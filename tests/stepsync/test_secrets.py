"""Key files: created once, mode 0600, 64 hex characters, never overwritten."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from stepsync import secrets as store


@pytest.fixture
def key_file_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "var" / "database.key"
    monkeypatch.delenv("DATABASE_ENCRYPTION_KEY", raising=False)
    monkeypatch.setenv("DATABASE_KEY_FILE", str(path))
    return path


def test_key_file_is_created_with_mode_0600(key_file_env: Path) -> None:
    assert store.ensure_key_file(store.DATABASE_KEY) is True
    assert stat.S_IMODE(key_file_env.stat().st_mode) == 0o600


def test_created_key_is_256_bits_of_hex(key_file_env: Path) -> None:
    store.ensure_key_file(store.DATABASE_KEY)
    assert store.HEX64.fullmatch(store.read_secret(store.DATABASE_KEY))


def test_existing_key_file_is_never_overwritten(key_file_env: Path) -> None:
    store.ensure_key_file(store.DATABASE_KEY)
    first = key_file_env.read_text()
    assert store.ensure_key_file(store.DATABASE_KEY) is False
    assert key_file_env.read_text() == first


def test_environment_variable_wins_over_the_key_file(
    key_file_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.ensure_key_file(store.DATABASE_KEY)
    monkeypatch.setenv("DATABASE_ENCRYPTION_KEY", "ab" * 32)
    assert store.read_secret(store.DATABASE_KEY) == "ab" * 32


def test_short_key_is_rejected_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_ENCRYPTION_KEY", "cafe" * 10)
    with pytest.raises(store.SecretError) as caught:
        store.read_secret(store.DATABASE_KEY)
    assert "cafe" not in str(caught.value)


def test_missing_key_names_the_variable_and_the_file(key_file_env: Path) -> None:
    with pytest.raises(store.SecretError, match="DATABASE_ENCRYPTION_KEY is not set"):
        store.read_secret(store.DATABASE_KEY)
