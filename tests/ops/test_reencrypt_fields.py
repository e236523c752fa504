"""manage.py reencrypt_fields: rotation to the newest field key, on SQLCipher and PostgreSQL.

Runs on whichever database the session uses (``make test`` runs the suite on both).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections

from chat.models import Conversation, Message
from ops.fieldkeys import reencrypt_field
from stepsync import crypto
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rotated(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Rows written under the session's key, then a newer key listed first."""
    old_spec = crypto._read_spec()
    new_id = f"r{secrets.token_hex(3)}"
    crypto.keyring.cache_clear()
    monkeypatch.setenv(crypto.ENV, old_spec)
    user = factories.make_user(username="rotation")
    for n in range(7):
        conversation = Conversation.objects.create(user=user, title=f"trip {n}")
        Message.objects.create(conversation=conversation, role="user", text=f"m{n}")
    monkeypatch.setenv(crypto.ENV, f"{new_id}:{secrets.token_hex(32)},{old_spec}")
    crypto.keyring.cache_clear()
    yield new_id
    crypto.keyring.cache_clear()


def raw_values(table: str, column: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} ORDER BY id")  # noqa: S608
        return [str(row[0]) for row in cursor.fetchall()]


def run_command(*args: str) -> str:
    out = StringIO()
    call_command("reencrypt_fields", *args, stdout=out)
    return out.getvalue()


def test_rotation_reencrypts_every_row_under_the_newest_key_id(rotated: str) -> None:
    out = run_command("--batch", "3")

    assert "reencrypted=14" in out
    for table, column in (("chat_message", "text"), ("chat_conversation", "title")):
        assert all(v.startswith(f"enc2:{rotated}:") for v in raw_values(table, column))
    assert sorted(Message.objects.values_list("text", flat=True)) == [
        f"m{n}" for n in range(7)
    ]


def test_reencryption_is_idempotent(rotated: str) -> None:
    run_command()
    before = raw_values("chat_message", "text")

    out = run_command()

    assert "reencrypted=0" in out
    assert raw_values("chat_message", "text") == before


def test_a_title_changed_while_its_batch_is_reencrypted_is_kept(rotated: str) -> None:
    target = Conversation.objects.order_by("pk").first()
    assert target is not None
    locked, edited = threading.Event(), threading.Event()

    def edit_title() -> None:
        locked.wait(30)
        try:
            Conversation.objects.filter(pk=target.pk).update(title="renamed")
        finally:
            connections.close_all()
            edited.set()

    def hold_batch(pks: list[object]) -> None:
        locked.set()
        edited.wait(1.5)

    editor = threading.Thread(target=edit_title)
    editor.start()
    field = Conversation._meta.get_field("title")
    changed = reencrypt_field(Conversation, field, batch=50, after_read=hold_batch)
    editor.join(30)

    assert changed == 7
    assert Conversation.objects.get(pk=target.pk).title == "renamed"
    assert all(
        v.startswith(f"enc2:{rotated}:")
        for v in raw_values("chat_conversation", "title")
    )


def test_append_only_timeline_rows_are_counted_and_left_readable(
    rotated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compliance.incidents import incident_open
    from compliance.models import Incident, IncidentUpdate

    new_spec = crypto._read_spec()
    monkeypatch.setenv(crypto.ENV, new_spec.split(",", 1)[1])
    crypto.keyring.cache_clear()
    incident_open(
        title="rotation drill", severity="low", category="llm", system_principal="t"
    )
    monkeypatch.setenv(crypto.ENV, new_spec)
    crypto.keyring.cache_clear()

    out = run_command()

    assert "append_only_stale=1" in out
    assert Incident.objects.get().title == "rotation drill"
    assert IncidentUpdate.objects.get().note == "Incident opened."
