"""Streamed replies are redacted as they are relayed, labels and all (SanitizingRelay).

The identifiers below are label-dependent: without the label the sanitizer cannot
tell them from other numbers, so a relay that releases text between a label and its
value would show the value unredacted.
"""

from __future__ import annotations

from typing import Any

import pytest

from chat.models import Message
from chat.sanitizer import sanitize
from chat.stream_redaction import SanitizingRelay
from tests.chat import llm_support
from tests.chat.llm_support import UNSURE_TEXT, parse_sse, send
from tests.llm_server import Fault

llm_server = llm_support.llm_server
llm_server_module = llm_support.llm_server_module
llm_on = llm_support.llm_on

LABELLED = [
    ("Member ID: A12345678", "A12345678"),
    ("MRN: 00123456", "00123456"),
    ("SSN: 123-45-6789", "123-45-6789"),
]


def relay_in_pieces(text: str, size: int) -> str:
    relay = SanitizingRelay()
    shown = [relay.feed(text[i : i + size]) for i in range(0, len(text), size)]
    return "".join(shown) + relay.flush()


@pytest.fixture
def token(patient: Any) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=patient).key


@pytest.mark.parametrize(("text", "raw"), LABELLED)
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_a_labelled_identifier_in_tiny_pieces_is_relayed_redacted(
    text: str, raw: str, size: int
) -> None:
    shown = relay_in_pieces(text, size)

    assert raw not in shown
    assert shown == sanitize(text).text


@pytest.mark.parametrize(("text", "raw"), LABELLED)
def test_a_label_on_the_line_before_its_value_still_marks_it(
    text: str, raw: str
) -> None:
    label, value = text.split(": ")
    split = f"Here it is. {label}:\n{value}\nKeep it safe."

    shown = relay_in_pieces(split, 2)

    assert raw not in shown
    assert shown == sanitize(split).text


def test_text_is_released_at_sentence_ends_not_at_colons() -> None:
    relay = SanitizingRelay()

    held = relay.feed("Open the app: then ")
    released = relay.feed("tap Sync. Next")

    assert held == ""
    assert released == "Open the app: then tap Sync."
    assert relay.flush() == " Next"


def test_a_long_run_without_a_sentence_end_is_released_at_a_space() -> None:
    relay = SanitizingRelay()

    shown = relay.feed("word " * 100)

    assert shown
    assert len(shown) <= 500


@pytest.mark.parametrize(("text", "raw"), LABELLED)
def test_a_streamed_labelled_identifier_never_reaches_the_client(
    llm_on: Any, token: str, conversation: Any, text: str, raw: str
) -> None:
    llm_on.set_default(Fault(content=text, chunks=len(text)))

    _, _, body = send(conversation.pk, {"text": UNSURE_TEXT}, token=token)

    events = parse_sse(body)
    relayed = "".join(data["text"] for name, data in events if name == "delta")
    done = events[-1][1]["reply"]
    stored = Message.objects.get(pk=done["id"]).text
    assert raw not in relayed
    assert relayed == stored == done["text"]


def test_an_identifier_cut_by_a_forced_release_has_its_rest_redacted() -> None:
    relay = SanitizingRelay()
    relay.feed("word " * 79 + "call 212 555 ")

    rest = relay.feed("0123 now. ")

    assert "0123" not in rest
    assert "[PHONE]" in rest
