"""Application-level field encryption: round trip, key ids, tamper detection."""

from __future__ import annotations

import secrets

import pytest

from stepsync import crypto


@pytest.fixture
def two_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = secrets.token_hex(32), secrets.token_hex(32)
    monkeypatch.setenv(crypto.ENV, f"new:{new},old:{old}")
    crypto.keyring.cache_clear()
    yield
    crypto.keyring.cache_clear()


def test_round_trip_returns_the_plaintext() -> None:
    assert crypto.decrypt(crypto.encrypt("steps 12,345")) == "steps 12,345"


def test_ciphertext_does_not_contain_the_plaintext() -> None:
    assert "canary-text" not in crypto.encrypt("canary-text")


def test_same_plaintext_encrypts_differently_each_time() -> None:
    assert crypto.encrypt("x") != crypto.encrypt("x")


def test_newest_key_encrypts(two_keys: None) -> None:
    assert crypto.key_id_of(crypto.encrypt("x")) == "new"


def test_older_key_still_decrypts(
    two_keys: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = crypto.keyring()
    nonce = b"\0" * 12
    blob = ring.keys["old"].encrypt(nonce, b"legacy", b"old")
    import base64

    stored = f"enc1:old:{base64.b64encode(nonce + blob).decode()}"
    assert crypto.decrypt(stored) == "legacy"


def test_tampered_ciphertext_is_refused_without_data_in_the_error() -> None:
    stored = crypto.encrypt("secret words")
    tampered = stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB")
    with pytest.raises(crypto.FieldCryptoError) as caught:
        crypto.decrypt(tampered)
    assert "secret" not in str(caught.value)


def test_malformed_key_entry_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(crypto.ENV, "k1:short")
    crypto.keyring.cache_clear()
    with pytest.raises(crypto.SecretError, match="id:<64 hex characters>"):
        crypto.keyring()
    crypto.keyring.cache_clear()
