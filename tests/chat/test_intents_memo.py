"""One rules turn normalises each text once, and keeps no text after the turn."""

from __future__ import annotations

import pytest

from chat import assistant, intents

TEXT = "my Fitbit steps aren't syncing to Apple Health"


@pytest.fixture
def normalised(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts that were really normalised (not served from the memo)."""
    seen: list[str] = []
    original = intents._normalise

    def counting(text: str, table: dict[str, str]) -> tuple[str, ...]:
        seen.append(text)
        return original(text, table)

    monkeypatch.setattr(intents, "_normalise", counting)
    return seen


def test_a_rules_turn_normalises_its_text_once(normalised: list[str]) -> None:
    assistant.respond(state={}, text=TEXT)
    assert normalised.count(TEXT) == 1


def test_outside_a_turn_every_call_normalises_again(normalised: list[str]) -> None:
    intents.classify(TEXT)
    intents.extract(TEXT)
    assert normalised.count(TEXT) == 2


def test_the_memo_ends_with_the_turn() -> None:
    with intents.one_turn():
        intents.classify(TEXT)
        assert intents._MEMO.get()
    assert intents._MEMO.get() is None


def test_answers_are_the_same_with_and_without_the_memo() -> None:
    for text in (TEXT, "yes", "no it still doesn't work", "can I talk to a human"):
        plain = (intents.classify(text), intents.extract(text), intents.yes_or_no(text))
        with intents.one_turn():
            memo = (
                intents.classify(text),
                intents.extract(text),
                intents.yes_or_no(text),
            )
        assert memo == plain


def test_a_different_expansion_table_is_not_served_from_the_memo() -> None:
    with intents.one_turn():
        default = intents.normalise("u r")
        custom = intents.normalise("u r", {"u": "them"})
    assert default != custom
    assert custom == intents.normalise("u r", {"u": "them"})
