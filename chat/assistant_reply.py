"""Building blocks of the dialogue: its state, reply shape and how a reply is composed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chat.knowledge import KB, PERIODS, PLATFORMS, Answer

State = dict[str, Any]
CONFIDENT_MIN = 0.5
MAX_TRIED = 12
SLOT_VALUES: dict[str, tuple[str, ...]] = {
    "platform": PLATFORMS,
    "brand": tuple(KB.battery),
    "source": tuple(KB.sources),
    "period": PERIODS,
    "awaiting": ("platform", "source", "brand", "android_version", "period", "check"),
    "problem": tuple(KB.intents),
    "last_intent": tuple(KB.intents),
    "pending": (*KB.intents, "escalate"),
}


@dataclass(frozen=True)
class QuickReply:
    label: str
    value: str


@dataclass(frozen=True)
class AssistantReply:
    text: str
    quick_replies: tuple[QuickReply, ...]
    intent: str
    confident: bool
    state: dict = field(default_factory=dict)


def clean_state(state: Mapping[str, Any] | None) -> State:
    """Keep only known keys with known values, so the state can never carry text."""
    raw = dict(state or {})
    st: State = {k: raw[k] for k, ok in SLOT_VALUES.items() if raw.get(k) in ok}
    for key, top in (("android_version", 30), ("level", 3), ("check", 20)):
        value = raw.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top:
            st[key] = value
    st.setdefault("level", 0)
    tried = raw.get("tried")
    if not isinstance(tried, list):
        tried = []
    st["tried"] = [t for t in tried if isinstance(t, str) and t in TRIED_NAMES]
    return st


TRIED_NAMES = {
    *KB.intents,
    *(f"level{n}_{p}" for n in (1, 2) for p in PLATFORMS),
    *(f"battery_{b}" for b in KB.battery),
    "handoff",
}


def note(st: State, name: str) -> None:
    if name not in st["tried"]:
        st["tried"] = [*st["tried"], name][-MAX_TRIED:]


def version_band(version: int | None) -> str | None:
    if version is None:
        return None
    return "v14" if version >= 14 else "v9_13" if version >= 9 else "old"


def source_label(st: State) -> str:
    source = KB.sources[st.get("source", "other")]
    return source.labels.get(st.get("platform", ""), source.label)


def fill(text: str, st: State, **extra: Any) -> str:
    label = source_label(st)
    phone = KB.sources.get(st.get("source", "")) and st.get("source") == "phone"
    apps = "Step Sync" if phone else f"{label} and Step Sync"
    return text.format(source=label, apps=apps, **extra)


def compose(
    st: State,
    answer: Answer,
    intent: str,
    *,
    steps: list[str] | None = None,
    prefix: tuple[str, ...] = (),
    extra_lines: tuple[str, ...] = (),
    confident: bool = True,
    offer_human: bool = False,
    **values: Any,
) -> AssistantReply:
    all_steps = (steps or []) + [fill(s, st, **values) for s in answer.steps]
    lines = [*prefix, fill(answer.intro, st, **values)]
    lines += [f"{n}. {s}" for n, s in enumerate(all_steps[:4], 1)]
    lines += [*extra_lines, fill(answer.next, st, **values)]
    values_out = list(answer.quick_replies)
    if offer_human:
        lines.append(KB.tone["human_offer"])
        values_out.append("human_support")
    buttons = tuple(
        QuickReply(KB.quick_replies[v].label, v) for v in dict.fromkeys(values_out)
    )
    st["last_intent"] = intent
    return AssistantReply("\n".join(lines), buttons, intent, confident, dict(st))


def ask(st: State, slot: str, pending: str, prefix: tuple[str, ...]) -> AssistantReply:
    st["awaiting"], st["pending"] = slot, pending
    key = (
        f"ask.source.{st.get('platform', 'android')}"
        if slot == "source"
        else f"ask.{slot}"
    )
    return compose(
        st,
        KB.answers[key],
        pending if pending in KB.intents else st.get("problem", "steps_not_syncing"),
        prefix=prefix,
    )


def missing_slot(st: State, needs: tuple[str, ...]) -> str | None:
    for slot in needs:
        if slot in ("brand", "android_version") and st.get("platform") == "ios":
            continue
        if slot == "platform" and st.get("period") == "today" and "period" in needs:
            continue
        if st.get(slot) is None:
            return slot
    return None
