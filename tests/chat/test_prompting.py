"""The prompt: system rules, the latest user turn always, older turns while they fit."""

from __future__ import annotations

from typing import Any

import pytest

from chat import prompting

HISTORY = [
    {"role": "user", "content": "My watch stopped syncing steps."},
    {"role": "assistant", "content": "Which phone do you use?"},
    {"role": "user", "content": "An Android phone with Health Connect."},
]


def system_cost() -> int:
    return prompting.estimate_tokens(prompting.system_prompt())


def test_a_roomy_budget_sends_the_whole_history_after_the_system_prompt() -> None:
    messages = prompting.build_messages(history=HISTORY, budget=10_000)

    assert messages[0]["role"] == "system"
    assert messages[1:] == HISTORY


def test_a_tight_budget_keeps_the_newest_turns() -> None:
    budget = system_cost() + prompting.estimate_tokens(HISTORY[-1]["content"])

    messages = prompting.build_messages(history=HISTORY, budget=budget)

    assert messages[1:] == [HISTORY[-1]]


@pytest.mark.parametrize("overshoot", [0, 1, 500])
def test_a_system_prompt_over_the_budget_still_sends_the_users_turn(
    overshoot: int,
) -> None:
    budget = system_cost() - overshoot

    messages = prompting.build_messages(history=HISTORY, budget=budget)

    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[-1]["content"] == HISTORY[-1]["content"]


def test_a_long_user_turn_is_cut_to_its_end_not_dropped() -> None:
    long_turn = "sync " * 2000 + "the last words"
    history = [{"role": "user", "content": long_turn}]

    messages = prompting.build_messages(history=history, budget=system_cost() + 100)

    assert messages[-1]["role"] == "user"
    assert messages[-1]["content"].endswith("the last words")
    assert prompting.estimate_tokens(messages[-1]["content"]) <= 100


def test_the_prompt_always_ends_with_the_latest_user_turn() -> None:
    history = [*HISTORY, {"role": "assistant", "content": "Open Health Connect."}]

    messages = prompting.build_messages(history=history, budget=10_000)

    assert messages[-1] == HISTORY[-1]


def test_a_history_without_a_user_turn_is_never_sent() -> None:
    with pytest.raises(prompting.PromptBlocked):
        prompting.build_messages(
            history=[{"role": "assistant", "content": "Hello."}], budget=10_000
        )


def test_the_system_prompt_holds_no_secret(settings: Any) -> None:
    prompt = prompting.system_prompt()

    assert settings.SECRET_KEY not in prompt
    assert "sk-" not in prompt
    assert "Bearer" not in prompt
