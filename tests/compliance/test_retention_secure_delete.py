"""After a purge, deleted message bytes are gone from every decrypted database page.

This SQLCipher build has no ``sqlite_dbpage``, so the test decrypts the pages itself
(SQLCipher 4 defaults with a raw key: AES-256-CBC per page, the IV in the page's
reserved tail, the salt in front of page 1) from the main file and the WAL. A control
delete with ``secure_delete=OFF`` shows that the same scan does find deleted bytes.
On PostgreSQL the database's storage is not ours to inspect: skipped there.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pytest
import time_machine
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.db import connection

from chat.models import Conversation, Message
from compliance import retention
from stepsync.secrets import DATABASE_KEY, read_secret

pytestmark = [pytest.mark.sqlcipher_only, pytest.mark.django_db(transaction=True)]

NOW = dt.datetime(2026, 6, 1, 3, 15, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=120)
PAGE_SIZE = 4096
RESERVE = 80  # IV (16) + HMAC-SHA512 (64)
SALT = 16
WAL_HEADER = 32
FRAME_HEADER = 24


@pytest.fixture(autouse=True)
def _wall_clock_at_now() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


def decrypt_page(page: bytes, *, number: int, key: bytes) -> bytes:
    start = SALT if number == 1 else 0
    iv = page[PAGE_SIZE - RESERVE : PAGE_SIZE - RESERVE + 16]
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(page[start : PAGE_SIZE - RESERVE]) + decryptor.finalize()


def decrypted_pages() -> Iterator[bytes]:
    """Every page of the main file, then every page image in the WAL."""
    key = bytes.fromhex(read_secret(DATABASE_KEY))
    path = connection.settings_dict["NAME"]
    with open(path, "rb") as handle:
        data = handle.read()
    for index in range(len(data) // PAGE_SIZE):
        page = data[index * PAGE_SIZE : (index + 1) * PAGE_SIZE]
        yield decrypt_page(page, number=index + 1, key=key)
    wal = path + "-wal"
    if not os.path.exists(wal):
        return
    with open(wal, "rb") as handle:
        data = handle.read()
    offset = WAL_HEADER
    while offset + FRAME_HEADER + PAGE_SIZE <= len(data):
        number = int.from_bytes(data[offset : offset + 4], "big")
        page = data[offset + FRAME_HEADER : offset + FRAME_HEADER + PAGE_SIZE]
        yield decrypt_page(page, number=number, key=key)
        offset += FRAME_HEADER + PAGE_SIZE


def on_disk(value: bytes) -> bool:
    return any(value in page for page in decrypted_pages())


def stored_ciphertext(message: Message) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT text FROM chat_message WHERE id = %s", [message.pk])
        return str(cursor.fetchone()[0]).encode()


def old_message(user: object) -> Message:
    convo = Conversation.objects.create(user=user, created_at=OLD, last_activity_at=OLD)
    return Message.objects.create(
        conversation=convo, role="user", text="my steps vanished", created_at=OLD
    )


def set_secure_delete(on: bool) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA secure_delete={'ON' if on else 'OFF'}")


def checkpoint() -> None:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_the_page_scan_finds_a_live_message(patient: object) -> None:
    value = stored_ciphertext(old_message(patient))

    assert on_disk(value) is True


def test_a_purged_message_is_not_in_any_page_or_the_wal(patient: object) -> None:
    value = stored_ciphertext(old_message(patient))

    result = retention.purge(now=NOW)

    assert result.checkpoint == "complete"
    assert on_disk(value) is False


def test_the_purge_turns_secure_delete_on_itself(patient: object) -> None:
    value = stored_ciphertext(old_message(patient))
    set_secure_delete(False)

    retention.purge(now=NOW)

    assert on_disk(value) is False


def test_a_plain_delete_without_secure_delete_leaves_bytes_the_scan_finds(
    patient: object,
) -> None:
    message = old_message(patient)
    value = stored_ciphertext(message)
    set_secure_delete(False)
    try:
        Conversation.objects.filter(pk=message.conversation_id).delete()
        checkpoint()
        found = on_disk(value)
    finally:
        set_secure_delete(True)

    assert found is True
