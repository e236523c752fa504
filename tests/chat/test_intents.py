"""Tests for the intent classifier and entity extraction."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from chat.intents import (
    best_guess,
    classify,
    extract,
    is_frustrated_tone,
    normalise,
    wants_human,
    yes_or_no,
)
from chat.knowledge import INTENT_NAMES

PHRASINGS = Path(__file__).parent.parent / "data" / "intent_phrasings.jsonl"
KNOWLEDGE_MD_EXAMPLES = [
    ("hi", "greeting"),
    ("hello", "greeting"),
    ("good morning", "greeting"),
    ("thanks", "thanks"),
    ("thx", "thanks"),
    ("got it", "thanks"),
    ("ok that fixed it", "thanks"),
    ("my steps aren't syncing", "steps_not_syncing"),
    ("steps not showing", "steps_not_syncing"),
    ("stpes not updating", "steps_not_syncing"),
    ("steps not", "steps_not_syncing"),
    ("sync is slow", "sync_delayed"),
    ("steps show up hours late", "sync_delayed"),
    ("count is wrong", "wrong_count"),
    ("different numbers in Fitbit and Health", "wrong_count"),
    ("steps counted twice", "duplicate_steps"),
    ("double steps", "duplicate_steps"),
    ("yesterday's steps are gone", "missing_data"),
    ("lost my data", "missing_data"),
    ("permission denied", "permission_grant"),
    ("how do I give access", "permission_grant"),
    ("why do you need access to my health data", "why_permission"),
    ("I use Fitbit and Google Fit", "multiple_sources"),
    ("change my data source", "multiple_sources"),
    ("battery saver blocks sync", "battery_optimisation"),
    ("only updates when I open the app", "battery_optimisation"),
    ("health connect not installed", "health_connect_missing"),
    ("check my setup", "status_check"),
    ("is everything working", "status_check"),
    ("still not working!!!", "frustrated"),
    ("this is useless", "frustrated"),
    ("is 2,000 steps a day bad for my heart", "medical_question"),
    ("asdf", "unclear"),
    ("why?", "unclear"),
    ("show me", "unclear"),
]


def phrasings() -> list[dict]:
    with PHRASINGS.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.mark.parametrize(("text", "intent"), KNOWLEDGE_MD_EXAMPLES)
def test_knowledge_md_examples_reach_their_intent(text: str, intent: str) -> None:
    assert classify(text).intent == intent


def test_accuracy_over_all_phrasings_is_at_least_90_percent() -> None:
    rows = phrasings()
    hits = sum(classify(row["text"]).intent == row["intent"] for row in rows)
    assert hits / len(rows) >= 0.90


def test_accuracy_on_the_held_out_split_is_at_least_90_percent() -> None:
    rows = [row for row in phrasings() if row["split"] == "test"]
    hits = sum(classify(row["text"]).intent == row["intent"] for row in rows)
    assert hits / len(rows) >= 0.90


def test_the_phrasings_cover_every_intent_at_least_8_times() -> None:
    counts = Counter(row["intent"] for row in phrasings())
    assert set(counts) == set(INTENT_NAMES)
    assert min(counts.values()) >= 8


def test_there_are_at_least_230_phrasings_with_35_to_50_percent_held_out() -> None:
    rows = phrasings()
    held_out = sum(row["split"] == "test" for row in rows) / len(rows)
    assert len(rows) >= 230
    assert 0.35 <= held_out <= 0.5


def test_the_phrasings_include_every_knowledge_md_example() -> None:
    texts = {row["text"] for row in phrasings()}
    assert {text for text, _ in KNOWLEDGE_MD_EXAMPLES} <= texts


def test_a_typo_in_a_keyword_is_tolerated() -> None:
    assert classify("my stpes arent snycing").intent == "steps_not_syncing"


def test_a_greeting_with_a_problem_picks_the_problem() -> None:
    assert classify("hi, my steps are counted twice").intent == "duplicate_steps"


def test_thanks_with_a_complaint_is_not_thanks() -> None:
    assert classify("thanks but it is still not working").intent == "frustrated"


def test_the_app_name_step_sync_is_not_a_sync_complaint() -> None:
    assert classify("where do I turn on permissions for step sync").intent == (
        "permission_grant"
    )


def test_unclear_input_has_zero_confidence() -> None:
    assert classify("asdf") == ("unclear", 0.0)


def test_a_clear_message_is_confident() -> None:
    assert classify("my steps are counted twice").confidence >= 0.8


def test_classification_is_deterministic() -> None:
    results = {classify("steps doubled after i got a garmin") for _ in range(50)}
    assert len(results) == 1


def test_classify_takes_under_half_a_millisecond_per_message() -> None:
    texts = [row["text"] for row in phrasings()]
    classify("warm up")
    start = time.perf_counter()
    for text in texts:
        classify(text)
    assert (time.perf_counter() - start) / len(texts) < 0.0005


def test_best_guess_returns_a_weak_match_below_the_threshold() -> None:
    assert best_guess("sync") == "steps_not_syncing"


def test_normalise_lowercases_strips_punctuation_and_collapses_repeats() -> None:
    assert normalise("Stepsss NOT syncingggg!!!") == ("steps", "not", "syncing")


def test_normalise_expands_contractions_written_without_apostrophe() -> None:
    assert normalise("arent") == ("are", "not")


def test_placeholders_are_opaque_and_ignored() -> None:
    assert normalise("I am [NAME] at [EMAIL]") == ("i", "am", "at")


def test_samsung_galaxy_means_android_and_brand_samsung() -> None:
    found = extract("my samsung galaxy")
    assert (found.platform, found.brand) == ("android", "samsung")


def test_iphone_means_ios() -> None:
    assert extract("I have an iphone").platform == "ios"


def test_garmin_is_a_step_source() -> None:
    assert extract("i wear a garmin").source == "garmin"


def test_android_12_gives_version_12() -> None:
    assert extract("phone is on Android 12").android_version == 12


def test_samsung_health_is_a_source_and_not_a_phone_brand() -> None:
    found = extract("samsung health")
    assert (found.source, found.brand) == ("samsung_health", None)


def test_a_misspelt_vendor_is_still_found() -> None:
    assert extract("my fitbitt").source == "fitbit"


def test_my_phone_is_a_source_only_when_the_source_was_asked() -> None:
    assert extract("my phone").source is None
    assert extract("my phone", asked_source=True).source == "phone"


def test_which_days_are_missing_is_extracted() -> None:
    assert extract("from last week").period == "older"


def test_capitals_and_exclamations_are_a_frustrated_tone() -> None:
    assert is_frustrated_tone("WHY IS THIS NOT WORKING") is True
    assert is_frustrated_tone("still not working!!!") is True


def test_a_calm_message_is_not_a_frustrated_tone() -> None:
    assert is_frustrated_tone("my steps are not syncing") is False


def test_asking_for_a_person_is_recognised() -> None:
    assert wants_human("can I talk to a real person") is True


def test_short_yes_and_no_answers_are_recognised() -> None:
    assert (yes_or_no("yep"), yes_or_no("nope, it's off")) == (True, False)
