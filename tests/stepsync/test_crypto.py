"""Application-level field encryption: round trip, key ids, field binding, key reload."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepsync import crypto

TEXT = "chat.message.text"
TITLE = "chat.conversation.title"


@pytest.fixture
def clean_ring() -> Iterator[None]:
    crypto.keyring.cache_clear()
    yield
    crypto.keyring.cache_clear()


@pytest.fixture
def two_keys(monkeypatch: pytest.MonkeyPatch, clean_ring: None) -> None:
    old, new = secrets.token_hex(32), secrets.token_hex(32)
    monkeypatch.setenv(crypto.ENV, f"new:{new},old:{old}")


@pytest.fixture
def key_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clean_ring: None) -> Path:
    path = tmp_path / "field_keys"
    path.write_text(f"k1:{secrets.token_hex(32)}")
    monkeypatch.delenv(crypto.ENV, raising=False)
    monkeypatch.setenv(crypto.FILE_ENV, str(path))
    return path


def test_round_trip_returns_the_plaintext() -> None:
    stored = crypto.encrypt("steps 12,345", context=TEXT)

    assert crypto.decrypt(stored, context=TEXT) == "steps 12,345"


def test_ciphertext_does_not_contain_the_plaintext() -> None:
    assert "canary-text" not in crypto.encrypt("canary-text", context=TEXT)


def test_same_plaintext_encrypts_differently_each_time() -> None:
    assert crypto.encrypt("x", context=TEXT) != crypto.encrypt("x", context=TEXT)


def test_ciphertext_carries_the_format_version_and_the_key_id(two_keys: None) -> None:
    stored = crypto.encrypt("x", context=TEXT)

    assert stored.startswith("enc2:new:")
    assert crypto.key_id_of(stored) == "new"


def test_older_key_still_decrypts(two_keys: None) -> None:
    old = crypto.Keyring(current="old", keys=crypto.keyring().keys)
    stored = crypto.encrypt("legacy", context=TEXT, ring=old)

    assert crypto.decrypt(stored, context=TEXT) == "legacy"


def test_the_version_one_format_bound_to_the_key_id_only_still_decrypts(
    two_keys: None,
) -> None:
    nonce = b"\0" * 12
    blob = crypto.keyring().keys["old"].encrypt(nonce, b"legacy", b"old")
    stored = f"enc1:old:{base64.b64encode(nonce + blob).decode()}"

    assert crypto.decrypt(stored, context=TEXT) == "legacy"


def test_a_ciphertext_moved_to_another_column_fails_with_a_phi_free_error() -> None:
    stored = crypto.encrypt("zebra-canary-phrase-7781 steps", context=TEXT)

    with pytest.raises(crypto.FieldCryptoError, match="another field") as caught:
        crypto.decrypt(stored, context=TITLE)
    assert "zebra" not in str(caught.value)
    assert stored not in str(caught.value)


def test_tampered_ciphertext_is_refused_without_data_in_the_error() -> None:
    stored = crypto.encrypt("secret words", context=TEXT)
    tampered = stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB")

    with pytest.raises(crypto.FieldCryptoError) as caught:
        crypto.decrypt(tampered, context=TEXT)
    assert "secret" not in str(caught.value)


def test_a_context_that_is_not_app_model_field_is_refused() -> None:
    with pytest.raises(crypto.FieldCryptoError, match=r"app\.model\.field"):
        crypto.encrypt("x", context="text")


def test_malformed_key_entry_is_rejected(
    monkeypatch: pytest.MonkeyPatch, clean_ring: None
) -> None:
    monkeypatch.setenv(crypto.ENV, "k1:short")

    with pytest.raises(crypto.SecretError, match="id:<64 hex characters>"):
        crypto.keyring()


def test_a_worker_meeting_a_new_key_id_rereads_the_key_file_once(
    key_file: Path,
) -> None:
    old_spec = key_file.read_text()
    crypto.keyring()
    new_spec = f"k2:{secrets.token_hex(32)},{old_spec}"
    stored = crypto.encrypt("x", context=TEXT, ring=crypto.keyring_from_spec(new_spec))
    key_file.write_text(new_spec)

    assert crypto.decrypt(stored, context=TEXT) == "x"
    assert crypto.keyring().current == "k2"


def test_a_key_id_missing_after_the_reread_fails_with_a_clear_error(
    key_file: Path,
) -> None:
    crypto.keyring()
    elsewhere = crypto.keyring_from_spec(f"k9:{secrets.token_hex(32)}")
    stored = crypto.encrypt("x", context=TEXT, ring=elsewhere)

    with pytest.raises(crypto.FieldCryptoError, match="unknown field key id 'k9'"):
        crypto.decrypt(stored, context=TEXT)


@pytest.mark.django_db
def test_a_message_ciphertext_copied_into_a_title_column_fails_to_read() -> None:
    from django.db import connection

    from chat.models import Conversation, Message
    from tests import factories

    user = factories.make_user(username="swap")
    conversation = Conversation.objects.create(user=user, title="walks")
    message = Message.objects.create(
        conversation=conversation, role="user", text="zebra-canary-phrase-7781 steps"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE chat_conversation SET title = "
            "(SELECT text FROM chat_message WHERE id = %s) WHERE id = %s",
            [message.pk, conversation.pk],
        )

    with pytest.raises(
        crypto.FieldCryptoError, match=r"chat\.conversation\.title"
    ) as err:
        Conversation.objects.get(pk=conversation.pk)
    assert "zebra" not in str(err.value)
