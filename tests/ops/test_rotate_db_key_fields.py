"""manage.py rotate_db_key on PostgreSQL: it rotates the application field keys."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from chat.models import Conversation, Message
from ops.models import KeyRecord
from stepsync import crypto
from tests import factories

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

NOW = "2026-12-03T07:20:24+00:00"
NEW_KEY_ID = "k20261203072024"


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The session's field keys moved from the environment into a key file."""
    path = tmp_path / "field_keys"
    path.write_text(crypto._read_spec() + "\n")
    path.chmod(0o600)
    monkeypatch.delenv(crypto.ENV)
    monkeypatch.setenv(crypto.FILE_ENV, str(path))
    crypto.keyring.cache_clear()
    yield path
    crypto.keyring.cache_clear()


def raw_message_texts() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT text FROM chat_message ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def test_rotate_db_key_on_postgresql_adds_a_field_key_and_reencrypts(
    key_file: Path,
) -> None:
    user = factories.make_user(username="rotation")
    conversation = Conversation.objects.create(user=user, title="trip")
    Message.objects.create(conversation=conversation, role="user", text="steps")
    out = StringIO()

    call_command("rotate_db_key", "--now", NOW, stdout=out)

    assert f"rotate_db_key ok field_key_id={NEW_KEY_ID} reencrypted=2" in out.getvalue()
    assert key_file.read_text().startswith(f"{NEW_KEY_ID}:")
    assert all(v.startswith(f"enc2:{NEW_KEY_ID}:") for v in raw_message_texts())
    assert list(Message.objects.values_list("text", flat=True)) == ["steps"]
    assert KeyRecord.objects.filter(purpose="field", key_id=NEW_KEY_ID).exists()


def test_rotate_db_key_on_postgresql_refuses_keys_from_the_environment() -> None:
    with pytest.raises(CommandError, match="code=rotation_unsupported"):
        call_command("rotate_db_key", "--now", NOW, stdout=StringIO())
