"""At rest on PostgreSQL: text written through the API is ciphertext in the raw rows.

PostgreSQL does not get SQLCipher, so the application encrypts every field that can
hold health information. The canary is a phrase the sanitizer keeps (it is not an
identifier), written through the real request path as a conversation title and as
message text; a separate psycopg connection then reads every text, varchar, bytea
and json column of the chat_* and compliance_* tables and must not find it.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test import Client

from chat.models import Conversation, Message
from stepsync import crypto
from tests import factories

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

CANARY = "zebra-canary-phrase-7781"
SCANNED_TYPES = ("text", "character varying", "bytea", "json", "jsonb")


def api_client(user: Any) -> Client:
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=user)
    return Client(
        HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_ACCEPT="application/json"
    )


def write_canaries_through_the_api() -> None:
    http = api_client(factories.make_user(username="atrest"))
    created = http.post(
        "/api/conversations/",
        {"title": f"{CANARY} walk"},
        content_type="application/json",
    )
    assert created.status_code == 201
    path = f"/api/conversations/{created.json()['id']}/messages/"
    for text in (f"{CANARY} steps", f"my steps aren't syncing {CANARY}"):
        sent = http.post(path, {"text": text}, content_type="application/json")
        assert sent.status_code == 201


def raw_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params)


def scanned_columns(raw: psycopg.Connection) -> list[tuple[str, str, str]]:
    return raw.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' AND data_type = ANY(%s) "
        "AND (table_name LIKE 'chat\\_%%' OR table_name LIKE 'compliance\\_%%')",
        (list(SCANNED_TYPES),),
    ).fetchall()


def canary_columns(raw: psycopg.Connection) -> list[str]:
    hits = []
    for table, column, data_type in scanned_columns(raw):
        cast = "" if data_type == "bytea" else "::text"
        query = f'SELECT "{column}"{cast} FROM "{table}"'  # noqa: S608
        for (value,) in raw.execute(query):
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            if CANARY in text:
                hits.append(f"{table}.{column}")
                break
    return hits


def test_the_canary_is_stored_and_readable_through_the_app() -> None:
    write_canaries_through_the_api()

    assert CANARY in Conversation.objects.get().title
    assert sum(CANARY in m.text for m in Message.objects.filter(role="user")) == 2


def test_raw_postgres_rows_hold_no_canary_in_any_text_or_json_column() -> None:
    write_canaries_through_the_api()

    with raw_connection() as raw:
        columns = scanned_columns(raw)
        hits = canary_columns(raw)

    assert ("chat_message", "text", "text") in columns
    assert hits == []


def test_select_star_on_chat_message_shows_only_ciphertext_with_the_key_id() -> None:
    write_canaries_through_the_api()
    kid = crypto.keyring().current

    with raw_connection() as raw:
        cursor = raw.execute("SELECT * FROM chat_message ORDER BY id")
        names = [column.name for column in cursor.description or ()]
        rows = cursor.fetchall()

    texts = [row[names.index("text")] for row in rows]
    assert len(texts) >= 4
    assert all(text.startswith(f"enc2:{kid}:") for text in texts)
    assert not any(CANARY in repr(row) for row in rows)
