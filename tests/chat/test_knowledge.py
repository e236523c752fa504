"""Tests for the knowledge base data and its loader."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from chat import knowledge_checks
from chat.assistant import answer_rules, domain_summary
from chat.knowledge import DATA_DIR, INTENT_NAMES, KB, KnowledgeError, load

KNOWLEDGE_MD_INTENTS = {
    "greeting", "thanks", "steps_not_syncing", "sync_delayed", "wrong_count",
    "duplicate_steps", "missing_data", "permission_grant", "why_permission",
    "multiple_sources", "battery_optimisation", "health_connect_missing",
    "status_check", "frustrated", "medical_question", "unclear",
}  # fmt: skip
IDENTIFIER_REQUEST = re.compile(
    r"(what is|what's|tell me|send|share|enter|give me|provide) (me )?your "
    r"(full )?(name|e-?mail|phone|number|date of birth|birthday|address)",
    re.IGNORECASE,
)


def all_texts() -> list[str]:
    return [text for _, text in knowledge_checks.all_texts(KB)]


def copy_data(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(DATA_DIR, target)
    return target


def test_every_intent_from_knowledge_md_is_defined() -> None:
    assert set(KB.intents) == KNOWLEDGE_MD_INTENTS == set(INTENT_NAMES)


def test_every_answer_gives_no_steps_or_two_to_four() -> None:
    for answer in KB.answers.values():
        if not answer.steps_from:
            assert len(answer.steps) in (0, 2, 3, 4), answer.key


def test_brand_guides_plus_battery_answer_make_two_to_four_steps() -> None:
    extra = len(KB.answers["battery_optimisation.android"].steps)
    for guide in KB.battery.values():
        assert 2 <= len(guide.steps) + extra <= 4, guide.brand


def test_every_answer_ends_with_a_next_action() -> None:
    for answer in KB.answers.values():
        assert answer.next.strip().endswith(("?", ".", "”.")), answer.key


def test_no_text_asks_for_a_personal_identifier() -> None:
    for text in all_texts():
        assert not IDENTIFIER_REQUEST.search(text), text


def test_no_text_says_the_assistant_did_not_understand() -> None:
    for text in all_texts():
        lowered = text.lower().replace("\u2019", "'")
        assert "understand" not in lowered, text


def test_no_text_claims_a_check_ran_on_the_device() -> None:
    claims = ("i checked", "i've checked", "i ran", "i can see", "i scanned")
    for text in all_texts():
        assert not any(claim in text.lower() for claim in claims), text


def test_greeting_says_it_is_an_ai_assistant() -> None:
    assert "AI assistant" in KB.answers["greeting"].intro


def test_every_quick_reply_an_answer_offers_is_in_the_catalogue() -> None:
    for answer in KB.answers.values():
        assert set(answer.quick_replies) <= set(KB.quick_replies), answer.key


def test_quick_reply_values_are_stable_snake_case() -> None:
    assert all(re.fullmatch(r"[a-z0-9_]+", value) for value in KB.quick_replies)


def test_every_manufacturer_from_knowledge_md_has_a_battery_guide() -> None:
    expected = {"samsung", "xiaomi", "oppo", "vivo", "huawei", "oneplus", "pixel"}
    assert set(KB.battery) == expected


def test_fitbit_garmin_and_samsung_health_have_connection_guides() -> None:
    for name in ("fitbit", "garmin", "samsung_health"):
        assert KB.sources[name].connect.get("android"), name


def test_escalation_has_three_levels_ending_in_human_support() -> None:
    assert [level.level for level in KB.levels] == [1, 2, 3]
    assert "human support" in KB.levels[2].name.lower()


def test_answer_rules_disclose_the_ai_and_forbid_medical_advice() -> None:
    rules = " ".join(answer_rules())
    assert "AI assistant" in rules
    assert "no medical advice" in rules.lower()


def test_domain_summary_gives_health_connect_by_android_version() -> None:
    summary = domain_summary()
    assert "Android 14" in summary
    assert "Android 9\u201313" in summary
    assert "{" not in summary


def test_the_shipped_data_loads() -> None:
    assert load(DATA_DIR).intents.keys() == KB.intents.keys()


def test_loader_rejects_a_file_that_is_not_toml(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    (data / "battery.toml").write_text("[brand.samsung\nlabel = ", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"battery\.toml: invalid TOML"):
        load(data)


def test_loader_rejects_an_answer_with_five_steps(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    with (data / "answers.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[too_long]\nintro = "x"\nsteps = ["a", "b", "c", "d", "e"]\n')
        handle.write('next = "y."\nquick_replies = []\n')
    with pytest.raises(KnowledgeError, match=r"too_long\.steps: give none or 2\u20134"):
        load(data)


def test_loader_rejects_an_unknown_key(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    text = (data / "battery.toml").read_text(encoding="utf-8")
    text = text.replace('label = "Vivo"', 'label = "Vivo"\ncolour = "blue"')
    (data / "battery.toml").write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"brand\.vivo\.colour: unknown key"):
        load(data)


def test_loader_rejects_a_quick_reply_to_an_unknown_intent(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    with (data / "quick_replies.toml").open("a", encoding="utf-8") as handle:
        handle.write('bogus = { label = "Bogus", action = "intent:no_such_intent" }\n')
    with pytest.raises(KnowledgeError, match=r"reply\.bogus: bad action"):
        load(data)


def test_loader_rejects_an_answer_that_asks_for_an_email(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    text = (data / "answers.toml").read_text(encoding="utf-8")
    text = text.replace("Tap Yes or No.", "Tap Yes or No, then send your email.")
    (data / "answers.toml").write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError, match="must not say 'your email'"):
        load(data)


def test_loader_rejects_a_missing_file(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    (data / "rules.toml").unlink()
    with pytest.raises(KnowledgeError, match=r"rules\.toml: file is missing"):
        load(data)
