"""RELIABILITY.md §2.2: bad inputs for POST /api/conversations/{id}/messages/."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from chat.models import Conversation, Message
from tests.phi_tripwire import CANARIES, find_canary

pytestmark = pytest.mark.django_db


def url(conversation: Conversation) -> str:
    return f"/api/conversations/{conversation.pk}/messages/"


def post_raw(
    client: APIClient,
    conversation: Conversation,
    body: bytes,
    content_type: str = "application/json",
) -> Any:
    return client.generic("POST", url(conversation), body, content_type=content_type)


def post_json(client: APIClient, conversation: Conversation, data: Any) -> Any:
    return post_raw(client, conversation, json.dumps(data).encode())


def user_messages(conversation: Conversation) -> int:
    return conversation.messages.filter(role="user").count()


@pytest.mark.parametrize(
    "text", ["", "   ", "\n\t \r\n", "\x00", "a\x00b", "\ud800", "ab\udfffcd"]
)
def test_empty_nul_and_lone_surrogate_text_gives_400(
    patient_api: APIClient, conversation: Conversation, text: str
) -> None:
    body = json.dumps({"text": text}).encode()  # \ud800 travels as a JSON escape

    response = post_raw(patient_api, conversation, body)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert response.json()["fields"] == ["text"]
    assert user_messages(conversation) == 0


def test_exactly_the_maximum_length_is_accepted(
    patient_api: APIClient, conversation: Conversation, settings: Any
) -> None:
    text = "s" * settings.MAX_MESSAGE_CHARS

    response = post_json(patient_api, conversation, {"text": text})

    assert response.status_code == 201
    assert len(response.json()["user_message"]["text"]) == settings.MAX_MESSAGE_CHARS


def test_one_over_the_maximum_length_gives_400(
    patient_api: APIClient, conversation: Conversation, settings: Any
) -> None:
    text = "s" * (settings.MAX_MESSAGE_CHARS + 1)

    response = post_json(patient_api, conversation, {"text": text})

    assert response.status_code == 400
    assert response.json()["reason"] == "too_long"


@pytest.mark.parametrize("megabytes", [1, 3])
def test_oversized_bodies_give_json_413(
    patient_api: APIClient, conversation: Conversation, megabytes: int
) -> None:
    body = json.dumps({"text": "a" * (megabytes * 1024 * 1024)}).encode()

    response = post_raw(patient_api, conversation, body)

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "too_large"
    assert user_messages(conversation) == 0


def test_a_body_over_the_limit_without_content_length_gives_413(
    patient_api: APIClient, conversation: Conversation, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"text": "a" * 2000}).encode()

    response = patient_api.generic(
        "POST",
        url(conversation),
        body,
        content_type="application/json",
        CONTENT_LENGTH="10",
    )

    assert response.status_code in (400, 413)
    assert response["Content-Type"] == "application/json"


def test_invalid_utf8_gives_400_with_a_fixed_message(
    patient_api: APIClient, conversation: Conversation
) -> None:
    response = post_raw(patient_api, conversation, b'{"text": "\xff\xfe steps"}')

    assert response.status_code == 400
    assert response.json() == {
        "error": "parse_error",
        "message": "The request body is not valid JSON.",
    }
    assert b"codec" not in response.content
    assert b"utf-8" not in response.content


def test_a_byte_order_mark_is_tolerated(
    patient_api: APIClient, conversation: Conversation
) -> None:
    body = b"\xef\xbb\xbf" + json.dumps({"text": "fitbit"}).encode()

    response = post_raw(patient_api, conversation, body)

    assert response.status_code == 201


@pytest.mark.parametrize(
    "text",
    [
        "steps \u202eevil\u202c syncing",
        "steps \x1b[31mred\x1b[0m \x1b]0;title\x07syncing",
        "steps\r\nINFO forged log line\r\n",
        "e\u0301\u0301\u0301\u0301\u0301\u0301\u0301\u0301 combining flood",
    ],
)
def test_bidi_ansi_and_crlf_are_accepted_but_stored_cleaned(
    patient_api: APIClient,
    conversation: Conversation,
    text: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    response = post_json(patient_api, conversation, {"text": text})

    assert response.status_code == 201
    stored = Message.objects.get(pk=response.json()["user_message"]["id"]).text
    assert "\u202e" not in stored
    assert "\x1b" not in stored
    assert "\r" not in stored
    assert "\u0301\u0301\u0301\u0301" not in stored
    assert "forged log line" not in caplog.text
    assert "evil" not in caplog.text


@pytest.mark.parametrize(
    "data",
    [
        {"text": 123},
        {"text": 1.5},
        {"text": True},
        {"text": None},
        {"text": []},
        {"text": ["a"]},
        {"text": {"$gt": ""}},
        {"quick_reply": 7},
        [1, 2],
        "str",
        123,
        None,
        {},
    ],
)
def test_type_confusion_gives_400_and_stores_nothing(
    patient_api: APIClient, conversation: Conversation, data: Any
) -> None:
    response = post_json(patient_api, conversation, data)

    assert response.status_code == 400
    assert response.json()["error"] in ("invalid", "parse_error")
    assert user_messages(conversation) == 0


def test_duplicate_keys_are_rejected(
    patient_api: APIClient, conversation: Conversation
) -> None:
    response = post_raw(patient_api, conversation, b'{"text": "x", "text": "dup"}')

    assert response.status_code == 400
    assert user_messages(conversation) == 0


@pytest.mark.parametrize("body", [b'{"text": NaN}', b'{"text": "x"', b"", b"{}{}"])
def test_malformed_json_gives_400(
    patient_api: APIClient, conversation: Conversation, body: bytes
) -> None:
    response = post_raw(patient_api, conversation, body)

    assert response.status_code == 400
    assert user_messages(conversation) == 0


def test_extra_fields_have_no_effect(
    patient_api: APIClient,
    patient: Any,
    other_patient: Any,
    conversation: Conversation,
) -> None:
    from chat.services import conversation_start

    theirs = conversation_start(user=other_patient)

    response = post_json(
        patient_api,
        conversation,
        {
            "text": "fitbit not syncing",
            "user_id": other_patient.pk,
            "role": "system",
            "conversation_id": theirs.pk,
            "source": "llm",
            "redactions": {"SSN": 9},
        },
    )

    assert response.status_code == 201
    stored = Message.objects.get(pk=response.json()["user_message"]["id"])
    assert stored.conversation_id == conversation.pk
    assert stored.role == "user"
    assert stored.redactions == {}
    assert theirs.messages.count() == 1


def test_a_form_encoded_body_gives_415(
    patient_api: APIClient, conversation: Conversation
) -> None:
    response = post_raw(
        patient_api,
        conversation,
        b"text=hello",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_get_on_the_message_endpoint_gives_405(
    patient_api: APIClient, conversation: Conversation
) -> None:
    response = patient_api.get(url(conversation) + "?text=hello")

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert user_messages(conversation) == 0


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("my ssn is \uff11\uff12\uff13-\uff14\uff15-\uff16\uff17\uff18\uff19", "SSN"),
        ("mail canary.\u200bpatient@example.org please", "EMAIL"),
        ("mail canary.patient(at)example(dot)org please", "EMAIL"),
    ],
)
def test_obfuscated_identifiers_are_redacted_and_counted(
    patient_api: APIClient, conversation: Conversation, text: str, kind: str
) -> None:
    response = post_json(patient_api, conversation, {"text": text})

    assert response.status_code == 201
    user_message = response.json()["user_message"]
    assert user_message["redactions"].get(kind) == 1
    assert f"[{kind}]" in user_message["text"]
    stored = Message.objects.get(pk=user_message["id"]).text
    leaked = find_canary(stored) or "patient" in stored
    assert leaked is False


def test_strict_mode_gives_422_with_types_only(
    patient_api: APIClient, conversation: Conversation, settings: Any
) -> None:
    settings.PHI_SANITIZER_STRICT_MODE = True

    response = post_json(
        patient_api, conversation, {"text": "ssn 123-45-6789 card 4111 1111 1111 1111"}
    )

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "phi_blocked"
    assert body["types"] == ["CREDIT_CARD", "SSN"]
    leaked = find_canary(response.content.decode())
    assert leaked is False
    assert user_messages(conversation) == 0


def test_canaries_never_reach_the_database_logs_or_responses(
    patient_api: APIClient,
    conversation: Conversation,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    text = (
        "My name is Zebulon Canarywood. DOB 1950-01-31, MRN-CANARY-0001, ssn 123-45-6789, "
        "card 4111 1111 1111 1111, mail canary.patient@example.org - fitbit broken"
    )

    response = post_json(patient_api, conversation, {"text": text})

    assert response.status_code == 201
    in_body = find_canary(response.content.decode())
    in_logs = find_canary(caplog.text)
    assert in_body is False
    assert in_logs is False
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT text FROM {Message._meta.db_table}")  # noqa: S608
        raw = " ".join(row[0] for row in cursor.fetchall())
    in_raw = any(canary in raw for canary in CANARIES)
    in_stored = find_canary(" ".join(m.text for m in conversation.messages.all()))
    assert in_raw is False
    assert in_stored is False
