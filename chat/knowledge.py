"""The troubleshooting knowledge base: loads and validates chat/knowledge/*.toml."""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

DATA_DIR = Path(__file__).with_name("knowledge")
INTENT_NAMES = (
    "greeting", "thanks", "steps_not_syncing", "sync_delayed", "wrong_count",
    "duplicate_steps", "missing_data", "permission_grant", "why_permission",
    "multiple_sources", "battery_optimisation", "health_connect_missing",
    "status_check", "frustrated", "medical_question", "unclear",
)  # fmt: skip
KINDS = ("social", "problem", "meta")
SLOTS = ("platform", "source", "brand", "android_version", "period")
PLATFORMS = ("ios", "android")
PERIODS = ("today", "recent", "older")
VERSION_BANDS = ("v14", "v9_13", "old")
PLACEHOLDERS = frozenset({"source", "apps", "n", "total", "item"})
REQUIRED_ANSWERS = (
    "greeting", "thanks", "unclear", "medical_question", "frustrated",
    "why_permission", "handoff", "level1", "level2", "source_noted",
    "platform_noted", "ask.platform", "ask.source.ios", "ask.source.android",
    "ask.brand", "ask.android_version", "ask.period", "status_check.question",
    "status_check.fix", "status_check.done",
)  # fmt: skip
ACTION_RE = re.compile(
    r"^(intent:\w+|set:\w+=\w+|escalate|fixed|human|check:(yes|no|next))$"
)
ATOM_RE = re.compile(r"^(@?[a-z0-9_]+)(\|@?[a-z0-9_]+)*$")


class KnowledgeError(ValueError):
    """The knowledge data is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Intent:
    name: str
    kind: str
    priority: int
    needs: tuple[str, ...]
    patterns: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Answer:
    key: str
    intro: str
    steps: tuple[str, ...]
    next: str
    quick_replies: tuple[str, ...]
    steps_from: str = ""


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    platform: str
    level: int
    applies_to: tuple[str, ...]
    text: str
    question: str
    variants: Mapping[str, str]
    steps_from: str = ""


@dataclass(frozen=True)
class BatteryGuide:
    brand: str
    label: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    name: str
    label: str
    kind: str
    labels: Mapping[str, str]
    connect: Mapping[str, str]


@dataclass(frozen=True)
class Level:
    level: int
    name: str
    summary: str


@dataclass(frozen=True)
class QuickReplyDef:
    value: str
    label: str
    action: str


@dataclass(frozen=True)
class BrandWords:
    words: tuple[str, ...]
    not_before: tuple[str, ...]


@dataclass(frozen=True)
class Lexicon:
    expand: Mapping[str, str]
    join: Mapping[str, str]
    known_words: frozenset[str]
    classes: Mapping[str, tuple[str, ...]]
    platform: Mapping[str, tuple[str, ...]]
    brands: Mapping[str, BrandWords]
    sources: Mapping[str, tuple[str, ...]]
    phone_when_asked: tuple[str, ...]
    period: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class KnowledgeBase:
    intents: Mapping[str, Intent]
    max_gap: int
    min_score: float
    lexicon: Lexicon
    answers: Mapping[str, Answer]
    checklists: Mapping[str, tuple[ChecklistItem, ...]]
    battery: Mapping[str, BatteryGuide]
    sources: Mapping[str, Source]
    generic_connect: Mapping[str, str]
    levels: tuple[Level, ...]
    rules: tuple[str, ...]
    forbidden: tuple[str, ...]
    tone: Mapping[str, str]
    facts: Mapping[str, str]
    quick_replies: Mapping[str, QuickReplyDef]


class _Table:
    """A TOML table with its file and path, for typed reads with clear errors."""

    def __init__(self, file: str, path: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise KnowledgeError(f"{file}: {path}: expected a table")
        self.file, self.path, self.data = file, path, data

    def fail(self, key: str, problem: str) -> KnowledgeError:
        return KnowledgeError(f"{self.file}: {self.path}.{key}: {problem}".strip())

    def only(self, *allowed: str) -> None:
        extra = sorted(set(self.data) - set(allowed))
        if extra:
            raise self.fail(extra[0], "unknown key")

    def get(self, key: str, kind: type, default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "missing")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
            raise self.fail(key, f"expected {kind.__name__}")
        return value

    def text(self, key: str, default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value is not None and default is ... and not value.strip():
            raise self.fail(key, "must not be empty")
        return value

    def texts(self, key: str, default: Any = ...) -> tuple[str, ...]:
        values = self.get(key, list, default)
        if not all(isinstance(v, str) and v.strip() for v in values):
            raise self.fail(key, "expected a list of non-empty strings")
        return tuple(values)

    def sub(self, key: str) -> _Table:
        return _Table(self.file, f"{self.path}.{key}".lstrip("."), self.get(key, dict))


def _read(directory: Path, name: str) -> _Table:
    path = directory / name
    try:
        with path.open("rb") as handle:
            return _Table(name, "", tomllib.load(handle))
    except FileNotFoundError:
        raise KnowledgeError(f"{name}: file is missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise KnowledgeError(f"{name}: invalid TOML: {exc}") from None


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def _load_intents(table: _Table) -> tuple[dict[str, Intent], int, float]:
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


def _load_lexicon(table: _Table) -> Lexicon:
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


def _load_answers(table: _Table, prefix: str = "") -> dict[str, Answer]:
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


def _load_checklists(table: _Table) -> dict[str, tuple[ChecklistItem, ...]]:
    table.only(*PLATFORMS)
    lists: dict[str, tuple[ChecklistItem, ...]] = {}
    for platform in PLATFORMS:
        items = []
        for index, raw in enumerate(table.get(platform, list)):
            spec = _Table(table.file, f"{platform}[{index}]", raw)
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


def _load_battery(table: _Table) -> dict[str, BatteryGuide]:
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


def _load_sources(table: _Table) -> tuple[dict[str, Source], dict[str, str]]:
    table.only("generic", "source")
    generic = table.sub("generic")
    generic.only(*PLATFORMS)
    sources, section = {}, table.sub("source")
    for name in section.data:
        spec = section.sub(name)
        spec.only("label", "kind", "label_ios", "label_android", *PLATFORMS)
        kind = spec.text("kind")
        if kind not in ("phone", "wearable"):
            raise spec.fail("kind", "must be 'phone' or 'wearable'")
        labels = {p: spec.text(f"label_{p}", spec.text("label")) for p in PLATFORMS}
        connect = {p: spec.text(p) for p in PLATFORMS if p in spec.data}
        sources[name] = Source(
            name, spec.text("label"), kind, _frozen(labels), _frozen(connect)
        )
    return sources, {p: generic.text(p) for p in PLATFORMS}


def _load_levels(table: _Table) -> tuple[Level, ...]:
    table.only("level")
    levels = []
    for index, raw in enumerate(table.get("level", list)):
        spec = _Table(table.file, f"level[{index}]", raw)
        spec.only("level", "name", "summary")
        levels.append(
            Level(spec.get("level", int), spec.text("name"), spec.text("summary"))
        )
    if [lv.level for lv in levels] != [1, 2, 3]:
        raise table.fail("level", "levels must be 1, 2 and 3 in order")
    return tuple(levels)


def _load_quick_replies(table: _Table) -> dict[str, QuickReplyDef]:
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
    intents, max_gap, min_score = _load_intents(_read(directory, "intents.toml"))
    rules = _read(directory, "rules.toml")
    rules.only("answer_rules", "forbidden_phrases", "tone", "facts")
    sources, generic = _load_sources(_read(directory, "wearables.toml"))
    tone, facts = rules.sub("tone"), rules.sub("facts")
    kb = KnowledgeBase(
        intents=_frozen(intents),
        max_gap=max_gap,
        min_score=min_score,
        lexicon=_load_lexicon(_read(directory, "lexicon.toml")),
        answers=_frozen(_load_answers(_read(directory, "answers.toml"))),
        checklists=_frozen(_load_checklists(_read(directory, "checklists.toml"))),
        battery=_frozen(_load_battery(_read(directory, "battery.toml"))),
        sources=_frozen(sources),
        generic_connect=_frozen(generic),
        levels=_load_levels(_read(directory, "escalation.toml")),
        rules=rules.texts("answer_rules"),
        forbidden=rules.texts("forbidden_phrases"),
        tone=_frozen({k: tone.text(k) for k in tone.data}),
        facts=_frozen({k: facts.text(k) for k in facts.data}),
        quick_replies=_frozen(
            _load_quick_replies(_read(directory, "quick_replies.toml"))
        ),
    )
    _check_references(kb)
    _check_texts(kb)
    return kb


def _check_references(kb: KnowledgeBase) -> None:
    missing = [key for key in REQUIRED_ANSWERS if key not in kb.answers]
    if missing:
        raise KnowledgeError(f"answers.toml: missing answers {missing}")
    for answer in kb.answers.values():
        unknown = [v for v in answer.quick_replies if v not in kb.quick_replies]
        if unknown:
            raise KnowledgeError(
                f"answers.toml: {answer.key}: unknown quick replies {unknown}"
            )
        if answer.steps_from == "brand":
            sizes = {len(g.steps) + len(answer.steps) for g in kb.battery.values()}
            if not sizes <= {2, 3, 4}:
                raise KnowledgeError(
                    f"answers.toml: {answer.key}: brand steps + steps must be 2\u20134"
                )
    for reply in kb.quick_replies.values():
        _check_action(kb, reply)
    if set(kb.lexicon.brands) != set(kb.battery):
        raise KnowledgeError("lexicon.toml: brand names must match battery.toml")
    if not set(kb.lexicon.sources) <= set(kb.sources):
        raise KnowledgeError("lexicon.toml: every source must be in wearables.toml")
    for intent in kb.intents.values():
        for pattern, _ in intent.patterns:
            for name in re.findall(r"@(\w+)", pattern):
                if name != "number" and name not in kb.lexicon.classes:
                    raise KnowledgeError(
                        f"intents.toml: {intent.name}: unknown class @{name}"
                    )


def _check_action(kb: KnowledgeBase, reply: QuickReplyDef) -> None:
    kind, _, arg = reply.action.partition(":")
    slot, _, value = arg.partition("=")
    allowed = {
        "platform": PLATFORMS, "source": tuple(kb.sources), "brand": tuple(kb.battery),
        "period": PERIODS, "android_version": tuple(str(n) for n in range(1, 40)),
    }  # fmt: skip
    bad = (kind == "intent" and arg not in kb.intents) or (
        kind == "set" and value not in allowed.get(slot, ())
    )
    if bad:
        raise KnowledgeError(
            f"quick_replies.toml: reply.{reply.value}: bad action {reply.action!r}"
        )


def _all_texts(kb: KnowledgeBase) -> list[tuple[str, str]]:
    texts = [(f"answers.toml: {a.key}", t) for a in kb.answers.values()
             for t in (a.intro, a.next, *a.steps)]  # fmt: skip
    for items in kb.checklists.values():
        texts += [(f"checklists.toml: {i.id}", t)
                  for i in items for t in (i.text, i.question, *i.variants.values())]  # fmt: skip
    texts += [
        (f"battery.toml: {g.brand}", t) for g in kb.battery.values() for t in g.steps
    ]
    texts += [(f"wearables.toml: {s.name}", t) for s in kb.sources.values()
              for t in (*s.connect.values(), *s.labels.values())]  # fmt: skip
    texts += [("wearables.toml: generic", t) for t in kb.generic_connect.values()]
    texts += [("rules.toml: tone", t) for t in kb.tone.values()]
    return texts


def _check_texts(kb: KnowledgeBase) -> None:
    for where, text in _all_texts(kb):
        lowered = text.lower().replace("\u2019", "'")
        for phrase in kb.forbidden:
            if phrase in lowered:
                raise KnowledgeError(f"{where}: must not say {phrase!r}")
        for _, field, _, _ in string.Formatter().parse(text):
            if field is not None and field not in PLACEHOLDERS:
                raise KnowledgeError(f"{where}: unknown placeholder {{{field}}}")


KB = load()
