"""Conversation pages: the access matrix for every page and persona, and CSRF."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from chat.models import Conversation

OBJECT_PAGES = [
    ("get", "/conversations/{pk}/", {}, 200),
    ("get", "/conversations/{pk}/rename/", {}, 200),
    ("post", "/conversations/{pk}/rename/", {"title": "Fitbit woes"}, 302),
    ("get", "/conversations/{pk}/delete/", {}, 200),
    ("post", "/conversations/{pk}/delete/", {}, 302),
    ("post", "/conversations/{pk}/messages/", {"text": "steps missing"}, 302),
]
OWN_PAGES = [
    ("get", "/conversations/", {}, 200),
    ("post", "/conversations/new/", {}, 302),
    ("get", "/my-data/", {}, 200),
]
ALL_PAGES = OBJECT_PAGES + OWN_PAGES
POST_FORMS = [(url, data) for method, url, data, _ in ALL_PAGES if method == "post"]


def call(client: Client, method: str, url: str, data: dict[str, str]) -> Any:
    return getattr(client, method)(url, data)


@pytest.fixture
def owner(client: Client, patient: Any) -> Client:
    client.force_login(patient)
    return client


@pytest.mark.parametrize(("method", "url", "data", "status"), ALL_PAGES)
def test_the_owner_may_use_every_page(
    owner: Client,
    conversation: Conversation,
    method: str,
    url: str,
    data: dict[str, str],
    status: int,
) -> None:
    response = call(owner, method, url.format(pk=conversation.pk), data)

    assert response.status_code == status


@pytest.mark.parametrize(("method", "url", "data", "status"), OBJECT_PAGES)
def test_another_user_gets_404_on_every_conversation_page(
    client: Client,
    other_patient: Any,
    conversation: Conversation,
    method: str,
    url: str,
    data: dict[str, str],
    status: int,
) -> None:
    client.force_login(other_patient)

    response = call(client, method, url.format(pk=conversation.pk), data)

    assert response.status_code == 404


@pytest.mark.parametrize(("method", "url", "data", "status"), OBJECT_PAGES)
def test_another_user_changes_nothing(
    client: Client,
    other_patient: Any,
    conversation: Conversation,
    method: str,
    url: str,
    data: dict[str, str],
    status: int,
) -> None:
    client.force_login(other_patient)
    before = conversation.messages.count()

    call(client, method, url.format(pk=conversation.pk), data)

    conversation.refresh_from_db()
    assert (conversation.title, conversation.messages.count()) == ("", before)


@pytest.mark.parametrize(("method", "url", "data", "status"), OBJECT_PAGES)
def test_staff_without_the_content_permission_get_404(
    client: Client,
    staff_member: Any,
    conversation: Conversation,
    method: str,
    url: str,
    data: dict[str, str],
    status: int,
) -> None:
    client.force_login(staff_member)

    response = call(client, method, url.format(pk=conversation.pk), data)

    assert response.status_code == 404


@pytest.mark.parametrize(("method", "url", "data", "status"), ALL_PAGES)
def test_anonymous_visitors_are_sent_to_login(
    client: Client,
    conversation: Conversation,
    method: str,
    url: str,
    data: dict[str, str],
    status: int,
) -> None:
    response = call(client, method, url.format(pk=conversation.pk), data)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("pk", ["0", "99999999999999999999999", "9223372036854775807"])
def test_impossible_conversation_ids_are_404(owner: Client, pk: str) -> None:
    response = owner.get(f"/conversations/{pk}/")

    assert response.status_code == 404


@pytest.mark.parametrize(("url", "data"), POST_FORMS)
def test_html_post_forms_enforce_csrf(
    patient: Any, conversation: Conversation, url: str, data: dict[str, str]
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(patient)

    response = client.post(url.format(pk=conversation.pk), data)

    assert response.status_code == 403


def test_the_start_page_offers_sign_up_and_log_in(client: Client, db: None) -> None:
    response = client.get("/")

    page = response.content.decode()
    assert 'href="/signup/"' in page
    assert 'href="/login/"' in page


def test_the_start_page_hides_sign_up_when_it_is_closed(
    client: Client, db: None, settings: Any
) -> None:
    settings.ALLOW_SIGNUP = False

    response = client.get("/")

    assert 'href="/signup/"' not in response.content.decode()


def test_the_start_page_sends_signed_in_users_to_their_conversations(
    owner: Client,
) -> None:
    response = owner.get("/")

    assert response["Location"] == "/conversations/"


def test_the_list_shows_only_the_users_own_conversations(
    owner: Client, conversation: Conversation, other_patient: Any
) -> None:
    from chat.services import conversation_start

    theirs = conversation_start(user=other_patient, title="Their Garmin")

    page = owner.get("/conversations/").content.decode()

    assert f"/conversations/{conversation.pk}/" in page
    assert f"/conversations/{theirs.pk}/" not in page
