"""Tests for the rule-based dialogue engine."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chat.assistant import (
    AssistantReply,
    QuickReply,
    fallback,
    is_quick_reply,
    respond,
    welcome,
)
from chat.knowledge import KB

NUMBERED = re.compile(r"^\d+\. ", re.MULTILINE)


def talk(*turns: str, state: dict[str, Any] | None = None) -> list[AssistantReply]:
    """Run a dialogue; a turn starting with '#' is a button press with that value."""
    replies, current = [], dict(state or {})
    for turn in turns:
        if turn.startswith("#"):
            reply = respond(state=current, quick_reply=turn[1:])
        else:
            reply = respond(state=current, text=turn)
        replies.append(reply)
        current = reply.state
    return replies


def values(reply: AssistantReply) -> list[str]:
    return [button.value for button in reply.quick_replies]


def steps(reply: AssistantReply) -> int:
    return len(NUMBERED.findall(reply.text))


DIALOGUES = [
    ("hi", "my steps aren't syncing", "#platform_ios", "#source_phone", "#still_not_working"),
    ("steps not syncing on my samsung galaxy", "#source_fitbit", "still not working",
     "STILL NOT WORKING!!!"),
    ("asdf", "why?", "show me", ""),
    ("check my setup", "#platform_android", "yes", "no", "#check_next", "yes"),
    ("yesterday's steps are gone", "#period_recent", "#platform_android"),
    ("health connect not installed", "#android_8_or_older"),
    ("this is useless", "is 2,000 steps a day bad for my heart", "thanks"),
    ("battery saver blocks sync", "#platform_android", "#brand_huawei"),
    ("why do you need access to my health data", "#permission_grant", "#platform_ios"),
]  # fmt: skip


def all_dialogue_replies() -> list[AssistantReply]:
    return [reply for dialogue in DIALOGUES for reply in talk(*dialogue)]


def test_greeting_discloses_an_ai_assistant() -> None:
    assert "AI assistant" in talk("hello")[0].text


def test_welcome_discloses_the_ai_and_offers_top_problems() -> None:
    reply = welcome()
    assert "AI assistant" in reply.text
    assert {"steps_not_syncing", "wrong_count"} <= set(values(reply))


def test_quick_replies_are_label_value_buttons() -> None:
    assert (
        QuickReply("iPhone", "platform_ios")
        in talk("steps not syncing")[0].quick_replies
    )


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("hi", "greeting"),
        ("thx", "thanks"),
        ("my steps aren't syncing", "steps_not_syncing"),
        ("steps show up hours late", "sync_delayed"),
        ("count is wrong", "wrong_count"),
        ("steps counted twice", "duplicate_steps"),
        ("lost my data", "missing_data"),
        ("permission denied", "permission_grant"),
        ("why do you need access to my health data", "why_permission"),
        ("I use Fitbit and Google Fit", "multiple_sources"),
        ("only updates when I open the app", "battery_optimisation"),
        ("health connect not installed", "health_connect_missing"),
        ("is everything working", "status_check"),
        ("this is useless", "frustrated"),
        ("is 2,000 steps a day bad for my heart", "medical_question"),
        ("asdf", "unclear"),
    ],
)
def test_each_intent_is_reached_from_a_realistic_phrasing(
    text: str, intent: str
) -> None:
    assert respond(state={}, text=text).intent == intent


def test_steps_not_syncing_asks_for_the_platform_first() -> None:
    reply = talk("my steps aren't syncing")[0]
    assert values(reply) == ["platform_ios", "platform_android"]


def test_the_source_is_asked_once_the_platform_is_known() -> None:
    reply = talk("my steps aren't syncing", "#platform_android")[1]
    assert {"source_fitbit", "source_garmin", "source_samsung_health"} <= set(
        values(reply)
    )


def test_platform_and_source_are_remembered_across_turns() -> None:
    replies = talk(
        "steps not syncing", "#platform_ios", "#source_garmin", "count is wrong"
    )
    assert replies[-1].state["platform"] == "ios"
    assert replies[-1].state["source"] == "garmin"
    assert "Data Sources & Access" in replies[-1].text


def test_platform_and_source_are_taken_from_free_text() -> None:
    reply = talk("my garmin steps don't sync to my iphone")[0]
    assert (reply.state["platform"], reply.state["source"]) == ("ios", "garmin")
    assert reply.state["level"] == 1


@pytest.mark.parametrize(
    ("text", "platform"),
    [
        ("my samsung health steps stopped syncing", "android"),
        ("google fit isn't syncing my steps", "android"),
        ("apple watch steps not syncing", "ios"),
    ],
)
def test_a_source_that_runs_on_one_platform_answers_the_platform_question(
    text: str, platform: str
) -> None:
    reply = talk(text)[0]
    assert reply.state["platform"] == platform
    assert "platform_ios" not in values(reply)


def test_a_typed_answer_to_the_platform_question_continues_the_problem() -> None:
    reply = talk("steps not syncing", "it's an iphone")[1]
    assert reply.state["platform"] == "ios"
    assert values(reply)[0] == "source_phone"


def test_iphone_checklist_for_the_phone_sensor() -> None:
    reply = talk("steps not syncing", "#platform_ios", "#source_phone")[-1]
    assert "Motion & Fitness" in reply.text
    assert "Settings → Privacy & Security → Health → Step Sync" in reply.text


def test_iphone_checklist_for_a_wearable_starts_with_its_connection() -> None:
    reply = talk("steps not syncing", "#platform_ios", "#source_fitbit")[-1]
    assert "Fitbit app: Account" in reply.text
    assert "Motion & Fitness" not in reply.text


@pytest.mark.parametrize(
    ("version_text", "expected"),
    [
        ("Android 14", "built into Android 14"),
        ("android 12", "Install the Health Connect app from the Play Store"),
        ("Android 8", "needs Android 9 or later"),
    ],
)
def test_android_checklist_follows_the_health_connect_version(
    version_text: str, expected: str
) -> None:
    reply = talk(f"steps not syncing, my phone is on {version_text}", "#source_phone")[
        -1
    ]
    assert expected in reply.text


def test_android_checklist_without_a_version_explains_both_cases() -> None:
    reply = talk("steps not syncing", "#platform_android", "#source_phone")[-1]
    assert "Android 14 and later" in reply.text
    assert "Android 9\u201313" in reply.text


@pytest.mark.parametrize("brand", sorted(KB.battery))
def test_each_manufacturer_battery_guide_is_reachable(brand: str) -> None:
    reply = talk("battery saver blocks sync", "#platform_android", f"#brand_{brand}")[
        -1
    ]
    first_step = KB.battery[brand].steps[0].split("{")[0]
    assert first_step in reply.text


def test_a_brand_named_in_text_selects_its_battery_guide() -> None:
    reply = talk("my xiaomi kills the app in the background")[0]
    assert "Autostart" in reply.text


@pytest.mark.parametrize(
    ("source", "platform", "expected"),
    [
        ("fitbit", "android", "Fitbit app: Account"),
        ("garmin", "ios", "Garmin Connect: Settings → Connected Apps"),
        ("samsung_health", "android", "Samsung Health: Settings → Health Connect"),
        ("apple_watch", "ios", "Apple Watch steps go straight to Apple Health"),
        ("oura", "android", "look for “Health Connect”"),
    ],
)
def test_each_wearable_guide_is_reachable(
    source: str, platform: str, expected: str
) -> None:
    reply = talk("steps not syncing", f"#platform_{platform}", f"#source_{source}")[-1]
    assert expected in reply.text


def test_a_button_is_routed_by_its_value_not_by_text() -> None:
    reply = respond(
        state={}, text="my steps are counted twice", quick_reply="wrong_count"
    )
    assert reply.intent == "wrong_count"


def test_a_value_that_reads_like_frustration_routes_as_its_action() -> None:
    state = talk("steps not syncing", "#platform_ios", "#source_phone")[-1].state
    reply = respond(state=state, quick_reply="still_not_working")
    assert KB.tone["frustration"] not in reply.text
    assert reply.state["level"] == 2


def test_an_unknown_button_value_gets_the_unclear_choices() -> None:
    reply = respond(state={}, quick_reply="my steps aren't syncing")
    assert reply.intent == "unclear"
    assert 3 <= len(reply.quick_replies) <= 4


def test_is_quick_reply_knows_the_catalogue() -> None:
    assert is_quick_reply("fix_battery") is True
    assert is_quick_reply("steps not syncing") is False


def test_still_not_working_escalates_one_level_at_a_time() -> None:
    replies = talk(
        "steps not syncing", "#platform_android", "#source_garmin", "#brand_samsung",
        "#still_not_working", "#still_not_working",
    )  # fmt: skip
    assert [r.state["level"] for r in replies[2:]] == [1, 1, 2, 3]


def test_level_two_covers_battery_settings_and_reinstalling_the_source() -> None:
    reply = talk(
        "steps not syncing", "#platform_ios", "#source_fitbit", "#still_not_working"
    )[-1]
    assert "Background App Refresh" in reply.text
    assert "re-install Fitbit" in reply.text


def test_level_three_hands_off_with_a_summary_free_of_phi() -> None:
    reply = talk(
        "I'm [NAME], my steps aren't syncing to my iphone, email [EMAIL]",
        "#source_garmin", "#still_not_working", "still not working, born [DATE]",
    )[-1]  # fmt: skip
    summary = next(line for line in reply.text.splitlines() if "Summary" in line)
    assert reply.state["level"] == 3
    assert "iPhone" in summary
    assert "Garmin Connect" in summary
    assert "level 2" in summary
    assert "[" not in summary
    assert "born" not in summary


def test_frustration_is_acknowledged_first_then_a_next_step_and_a_person() -> None:
    state = talk("steps not syncing", "#platform_ios", "#source_phone")[-1].state
    reply = respond(state=state, text="STILL NOT WORKING!!!")
    assert reply.text.startswith(KB.tone["frustration"])
    assert steps(reply) >= 2
    assert "human_support" in values(reply)


def test_frustration_without_a_known_problem_offers_choices_and_a_person() -> None:
    reply = talk("this is useless")[0]
    assert reply.text.startswith(KB.tone["frustration"])
    assert "human_support" in values(reply)


def test_asking_for_a_person_hands_off() -> None:
    assert talk("can I talk to a real person please")[0].state["level"] == 3


@pytest.mark.parametrize("text", ["asdf", "why?", "show me", "", "   "])
def test_unclear_input_gets_three_or_four_choices(text: str) -> None:
    reply = respond(state={}, text=text)
    assert 3 <= len(reply.quick_replies) <= 4
    assert reply.confident is False


def test_no_reply_says_it_did_not_understand() -> None:
    for reply in all_dialogue_replies():
        assert "understand" not in reply.text.lower()


def test_every_reply_gives_no_steps_or_two_to_four() -> None:
    for reply in all_dialogue_replies():
        assert steps(reply) in (0, 2, 3, 4), reply.text


def test_every_reply_ends_with_a_next_action() -> None:
    for reply in all_dialogue_replies():
        assert reply.text.rstrip().endswith(("?", ".", "”.", "”")), reply.text


def test_the_state_is_json_serialisable() -> None:
    for reply in all_dialogue_replies():
        assert json.loads(json.dumps(reply.state)) == reply.state


def test_a_multi_intent_message_answers_the_most_specific_problem() -> None:
    reply = respond(
        state={"platform": "android"}, text="hi, my steps are counted twice"
    )
    assert reply.intent == "duplicate_steps"
    assert "source priority" in reply.text


def test_a_medical_question_gets_no_advice_but_a_clinician() -> None:
    reply = talk("how many steps should I walk to lose weight")[0]
    assert "can't give medical advice" in reply.text
    assert "clinician" in reply.text


def test_identifiers_in_the_message_are_acknowledged_as_removed() -> None:
    reply = talk("hi I'm [NAME], my steps are counted twice")[0]
    assert reply.text.startswith(KB.tone["identifiers_removed"])


def test_missing_data_asks_which_days_first() -> None:
    reply = talk("lost my data")[0]
    assert values(reply) == ["period_today", "period_recent", "period_older"]


def test_missing_days_on_android_mention_access_to_past_data() -> None:
    reply = talk("lost my data", "#period_older", "#platform_android")[-1]
    assert "Access past data" in reply.text


def test_health_connect_on_an_iphone_is_explained_as_android_only() -> None:
    reply = respond(state={"platform": "ios"}, text="health connect not installed")
    assert "Android only" in reply.text


def test_the_status_check_asks_the_checklist_as_questions() -> None:
    replies = talk("check my setup", "#platform_ios", "yes")
    assert "Check 1 of" in replies[1].text
    assert "Check 2 of" in replies[2].text
    assert values(replies[2]) == ["check_yes", "check_no"]


def test_a_no_in_the_status_check_explains_the_fix() -> None:
    reply = talk("check my setup", "#platform_ios", "no")[-1]
    assert "Data Sources & Access" in reply.text
    assert "check_next" in values(reply)


def test_fixed_closes_the_problem_and_offers_a_status_check() -> None:
    reply = talk("steps not syncing", "#platform_ios", "#source_phone", "#fixed")[-1]
    assert reply.state["level"] == 0
    assert "problem" not in reply.state
    assert "status_check" in values(reply)


def test_a_tampered_state_is_cleaned() -> None:
    reply = respond(
        state={"platform": "windows", "note": "[NAME]", "level": 9}, text="hi"
    )
    assert "platform" not in reply.state
    assert "note" not in reply.state
    assert reply.state["level"] == 0


def test_fallback_answers_a_weak_match_instead_of_choices() -> None:
    reply = fallback(state={"platform": "ios"}, text="sync")
    assert reply.intent == "steps_not_syncing"


def test_fallback_still_offers_choices_for_nonsense() -> None:
    assert fallback(state={}, text="asdf").intent == "unclear"
