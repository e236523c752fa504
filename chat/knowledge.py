"""The troubleshooting knowledge base: loads and validates chat/knowledge/*.toml."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from chat.knowledge_checks import check_references, check_texts
from chat.knowledge_toml import Table, read_table
from chat.knowledge_types import (
    ACTION_RE,
    ATOM_RE,
    DATA_DIR,
    INTENT_NAMES,
    KINDS,
    PERIODS,
    PLATFORMS,
    SLOTS,
    VERSION_BANDS,
    Answer,
    BatteryGuide,
    BrandWords,
    ChecklistItem,
    Intent,
    KnowledgeBase,
    KnowledgeError,
    Level,
    Lexicon,
    QuickReplyDef,
    Source,
)

__all__ = [
    "DATA_DIR",
    "INTENT_NAMES",
    "KB",
    "PERIODS",
    "PLATFORMS",
    "Answer",
    "ChecklistItem",
    "KnowledgeBase",
    "KnowledgeError",
    "load",
]


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def _load_intents(table: Table) -> tuple[dict[str, Intent], int, float]:
    table.only("max_gap", "min_score", "intent")
    intents_table = table.sub("intent")
    intents: dict[str, Intent] = {}
    for name in intents_table.data:
        spec = intents_table.sub(name)
        spec.only("kind", "priority", "needs", "patterns")
        kind, needs = spec.text("kind"), spec.texts("needs")
        if kind not in KINDS:
            raise spec.fail("kind", f"must be one of {KINDS}")
        if not set(needs) <= set(SLOTS):
            raise spec.fail("needs", f"slots must be among {SLOTS}")
        patterns = spec.sub("patterns")
        pairs = tuple((p, patterns.get(p, float)) for p in patterns.data)
        for pattern, _ in pairs:
            if not pattern.split() or not all(
                ATOM_RE.match(a) for a in pattern.split()
            ):
                raise patterns.fail(repr(pattern), "atoms are words, @class or a|b")
        intents[name] = Intent(name, kind, spec.get("priority", int), needs, pairs)
    if set(intents) != set(INTENT_NAMES):
        missing = sorted(set(INTENT_NAMES) ^ set(intents))
        raise intents_table.fail(
            "", f"intents must be exactly KNOWLEDGE.md's: {missing}"
        )
    return intents, table.get("max_gap", int), table.get("min_score", float)


def _load_lexicon(table: Table) -> Lexicon:
    table.only(
        "expand",
        "join",
        "known_words",
        "classes",
        "platform",
        "brand",
        "source",
        "period",
    )
    expand, join = table.sub("expand"), table.sub("join")
    classes = table.sub("classes")
    platform, brand, source = (
        table.sub("platform"),
        table.sub("brand"),
        table.sub("source"),
    )
    period = table.sub("period")
    brands = {}
    for name in brand.data:
        spec = brand.sub(name)
        spec.only("words", "not_before")
        brands[name] = BrandWords(spec.texts("words"), spec.texts("not_before"))
    platform.only(*PLATFORMS)
    period.only(*PERIODS)
    sources = {k: source.texts(k) for k in source.data if k != "phone_when_asked"}
    return Lexicon(
        expand=_frozen({k: expand.text(k) for k in expand.data}),
        join=_frozen({k: join.text(k) for k in join.data}),
        known_words=frozenset(table.texts("known_words")),
        classes=_frozen({k: classes.texts(k) for k in classes.data}),
        platform=_frozen({k: platform.texts(k) for k in PLATFORMS}),
        brands=_frozen(brands),
        sources=_frozen(sources),
        phone_when_asked=source.texts("phone_when_asked"),
        period=_frozen({k: period.texts(k) for k in PERIODS}),
    )


def _load_answers(table: Table, prefix: str = "") -> dict[str, Answer]:
    if "intro" not in table.data:
        answers: dict[str, Answer] = {}
        for key in table.data:
            answers.update(_load_answers(table.sub(key), f"{prefix}{key}."))
        return answers
    table.only("intro", "steps", "next", "quick_replies", "steps_from")
    key = prefix.rstrip(".")
    steps, steps_from = table.texts("steps", []), table.text("steps_from", "")
    if steps_from not in ("", "brand"):
        raise table.fail("steps_from", "must be 'brand' or absent")
    if not steps_from and len(steps) not in (0, 2, 3, 4):
        raise table.fail("steps", "give none or 2\u20134 numbered steps")
    intro, nxt = table.text("intro"), table.text("next")
    replies = table.texts("quick_replies")
    return {key: Answer(key, intro, steps, nxt, replies, steps_from)}


def _load_checklists(table: Table) -> dict[str, tuple[ChecklistItem, ...]]:
    table.only(*PLATFORMS)
    lists: dict[str, tuple[ChecklistItem, ...]] = {}
    for platform in PLATFORMS:
        items = []
        for index, raw in enumerate(table.get(platform, list)):
            spec = Table(table.file, f"{platform}[{index}]", raw)
            spec.only(
                "id", "level", "for", "text", "question", "variants", "steps_from"
            )
            applies_to = spec.texts("for")
            if not set(applies_to) <= {"phone", "wearable"}:
                raise spec.fail("for", "must be 'phone' and/or 'wearable'")
            if spec.get("level", int) not in (0, 1, 2):
                raise spec.fail("level", "must be 0, 1 or 2")
            variants = spec.sub("variants").data if "variants" in spec.data else {}
            if not set(variants) <= set(VERSION_BANDS):
                raise spec.fail("variants", f"keys must be among {VERSION_BANDS}")
            items.append(
                ChecklistItem(
                    spec.text("id"), platform, spec.get("level", int), applies_to,
                    spec.text("text"), spec.text("question", ""), _frozen(variants),
                    spec.text("steps_from", ""),
                )
            )  # fmt: skip
        lists[platform] = tuple(items)
    return lists


def _load_battery(table: Table) -> dict[str, BatteryGuide]:
    table.only("brand")
    brands = table.sub("brand")
    guides = {}
    for name in brands.data:
        spec = brands.sub(name)
        spec.only("label", "steps")
        steps = spec.texts("steps")
        if len(steps) not in (1, 2):
            raise spec.fail("steps", "a brand guide has 1 or 2 steps")
        guides[name] = BatteryGuide(name, spec.text("label"), steps)
    return guides


def _load_sources(table: Table) -> tuple[dict[str, Source], dict[str, str]]:
    table.only("generic", "source")
    generic = table.sub("generic")
    generic.only(*PLATFORMS)
    sources, section = {}, table.sub("source")
    for name in section.data:
        spec = section.sub(name)
        spec.only("label", "kind", "label_ios", "label_android", "platform", *PLATFORMS)
        kind = spec.text("kind")
        if kind not in ("phone", "wearable"):
            raise spec.fail("kind", "must be 'phone' or 'wearable'")
        platform = spec.text("platform", "") or None
        if platform is not None and platform not in PLATFORMS:
            raise spec.fail("platform", "must be 'ios' or 'android'")
        labels = {p: spec.text(f"label_{p}", spec.text("label")) for p in PLATFORMS}
        connect = {p: spec.text(p) for p in PLATFORMS if p in spec.data}
        sources[name] = Source(
            name, spec.text("label"), kind, _frozen(labels), _frozen(connect), platform
        )
    return sources, {p: generic.text(p) for p in PLATFORMS}


def _load_levels(table: Table) -> tuple[Level, ...]:
    table.only("level")
    levels = []
    for index, raw in enumerate(table.get("level", list)):
        spec = Table(table.file, f"level[{index}]", raw)
        spec.only("level", "name", "summary")
        levels.append(
            Level(spec.get("level", int), spec.text("name"), spec.text("summary"))
        )
    if [lv.level for lv in levels] != [1, 2, 3]:
        raise table.fail("level", "levels must be 1, 2 and 3 in order")
    return tuple(levels)


def _load_quick_replies(table: Table) -> dict[str, QuickReplyDef]:
    table.only("reply")
    section = table.sub("reply")
    replies = {}
    for value in section.data:
        spec = section.sub(value)
        spec.only("label", "action")
        if not ACTION_RE.match(spec.text("action")):
            raise spec.fail("action", "unknown action form")
        replies[value] = QuickReplyDef(value, spec.text("label"), spec.text("action"))
    return replies


def load(directory: Path = DATA_DIR) -> KnowledgeBase:
    """Read every knowledge file in directory; raise KnowledgeError when malformed."""
    intents, max_gap, min_score = _load_intents(read_table(directory, "intents.toml"))
    rules = read_table(directory, "rules.toml")
    rules.only("answer_rules", "forbidden_phrases", "tone", "facts")
    sources, generic = _load_sources(read_table(directory, "wearables.toml"))
    tone, facts = rules.sub("tone"), rules.sub("facts")
    kb = KnowledgeBase(
        intents=_frozen(intents),
        max_gap=max_gap,
        min_score=min_score,
        lexicon=_load_lexicon(read_table(directory, "lexicon.toml")),
        answers=_frozen(_load_answers(read_table(directory, "answers.toml"))),
        checklists=_frozen(_load_checklists(read_table(directory, "checklists.toml"))),
        battery=_frozen(_load_battery(read_table(directory, "battery.toml"))),
        sources=_frozen(sources),
        generic_connect=_frozen(generic),
        levels=_load_levels(read_table(directory, "escalation.toml")),
        rules=rules.texts("answer_rules"),
        forbidden=rules.texts("forbidden_phrases"),
        tone=_frozen({k: tone.text(k) for k in tone.data}),
        facts=_frozen({k: facts.text(k) for k in facts.data}),
        quick_replies=_frozen(
            _load_quick_replies(read_table(directory, "quick_replies.toml"))
        ),
    )
    check_references(kb)
    check_texts(kb)
    return kb


KB = load()
