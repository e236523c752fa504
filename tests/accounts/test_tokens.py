"""API tokens authenticate through prepared statements with DRF's rules."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from chat.models import Conversation


@pytest.fixture
def conversation(patient: Any) -> Conversation:
    return Conversation.objects.create(user=patient)


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_a_valid_token_sends_a_message_as_its_user(
    patient: Any, conversation: Conversation
) -> None:
    client = token_client(Token.objects.create(user=patient).key)

    response = client.post(
        f"/api/conversations/{conversation.pk}/messages/",
        {"text": "my steps are not syncing"},
        format="json",
    )

    assert response.status_code == 201
    assert conversation.messages.filter(role="user").count() == 1


def test_an_inactive_users_token_is_refused_with_401(
    patient: Any, conversation: Conversation
) -> None:
    key = Token.objects.create(user=patient).key
    get_user_model().objects.filter(pk=patient.pk).update(is_active=False)

    response = token_client(key).get(f"/api/conversations/{conversation.pk}/")

    assert response.status_code == 401


def test_an_unknown_token_cannot_send_a_message(conversation: Conversation) -> None:
    response = token_client("f" * 40).post(
        f"/api/conversations/{conversation.pk}/messages/",
        {"text": "hello"},
        format="json",
    )

    assert response.status_code == 401
    assert conversation.messages.count() == 0
