"""The tables written on every chat turn carry no index that another covers.

Each index is one more (encrypted) page written with every row; an index whose
columns begin another index's serves no lookup the longer one does not.
"""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

HOT_TABLES = (
    "chat_message",
    "chat_conversation",
    "chat_llmcall",
    "compliance_auditevent",
    "stepsync_sharedstate",
)


def _plain_indexes(table: str) -> dict[str, tuple[str, ...]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        name: tuple(info["columns"])
        for name, info in constraints.items()
        if info["index"] and not info["unique"] and not info["primary_key"]
    }


def _covered(table: str) -> list[str]:
    indexes = _plain_indexes(table)
    return sorted(
        name
        for name, columns in indexes.items()
        for other, longer in indexes.items()
        if other != name
        and len(longer) > len(columns)
        and longer[: len(columns)] == columns
    )


@pytest.mark.parametrize("table", HOT_TABLES)
def test_no_index_of_a_hot_table_is_covered_by_another(table: str) -> None:
    assert _covered(table) == []


def test_a_message_lookup_by_conversation_still_has_an_index() -> None:
    indexes = _plain_indexes("chat_message")

    assert ("conversation_id", "created_at") in indexes.values()


def test_an_audit_lookup_by_actor_still_has_an_index() -> None:
    indexes = _plain_indexes("compliance_auditevent")

    assert ("actor_id", "at") in indexes.values()


def test_llm_calls_are_indexed_by_time_only() -> None:
    assert list(_plain_indexes("chat_llmcall").values()) == [("created_at",)]
