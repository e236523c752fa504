"""The knowledge base's shape: its domain constants and frozen record types."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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
    platform: str | None = None  # a source that exists on one platform only


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
