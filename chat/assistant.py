"""The rule-based troubleshooting dialogue: routes text or buttons to answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chat import intents
from chat.knowledge import KB, PERIODS, PLATFORMS, Answer, ChecklistItem

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


def _clean_state(state: Mapping[str, Any] | None) -> State:
    """Keep only known keys with known values, so the state can never carry text."""
    raw = dict(state or {})
    st: State = {k: raw[k] for k, ok in SLOT_VALUES.items() if raw.get(k) in ok}
    for key, top in (("android_version", 30), ("level", 3), ("check", 20)):
        value = raw.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top:
            st[key] = value
    st.setdefault("level", 0)
    tried = raw.get("tried") if isinstance(raw.get("tried"), list) else []
    st["tried"] = [t for t in tried if isinstance(t, str) and t in _TRIED_NAMES]
    return st


_TRIED_NAMES = {
    *KB.intents,
    *(f"level{n}_{p}" for n in (1, 2) for p in PLATFORMS),
    *(f"battery_{b}" for b in KB.battery),
    "handoff",
}


def _note(st: State, name: str) -> None:
    if name not in st["tried"]:
        st["tried"] = [*st["tried"], name][-MAX_TRIED:]


def _band(version: int | None) -> str | None:
    if version is None:
        return None
    return "v14" if version >= 14 else "v9_13" if version >= 9 else "old"


def _source_label(st: State) -> str:
    source = KB.sources[st.get("source", "other")]
    return source.labels.get(st.get("platform", ""), source.label)


def _fill(text: str, st: State, **extra: Any) -> str:
    label = _source_label(st)
    phone = KB.sources.get(st.get("source", "")) and st.get("source") == "phone"
    apps = "Step Sync" if phone else f"{label} and Step Sync"
    return text.format(source=label, apps=apps, **extra)


def _reply(
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
    all_steps = (steps or []) + [_fill(s, st, **values) for s in answer.steps]
    lines = [*prefix, _fill(answer.intro, st, **values)]
    lines += [f"{n}. {s}" for n, s in enumerate(all_steps[:4], 1)]
    lines += [*extra_lines, _fill(answer.next, st, **values)]
    values_out = list(answer.quick_replies)
    if offer_human:
        lines.append(KB.tone["human_offer"])
        values_out.append("human_support")
    buttons = tuple(
        QuickReply(KB.quick_replies[v].label, v) for v in dict.fromkeys(values_out)
    )
    st["last_intent"] = intent
    return AssistantReply("\n".join(lines), buttons, intent, confident, dict(st))


def _ask(st: State, slot: str, pending: str, prefix: tuple[str, ...]) -> AssistantReply:
    st["awaiting"], st["pending"] = slot, pending
    key = (
        f"ask.source.{st.get('platform', 'android')}"
        if slot == "source"
        else f"ask.{slot}"
    )
    return _reply(
        st,
        KB.answers[key],
        pending if pending in KB.intents else st.get("problem", "steps_not_syncing"),
        prefix=prefix,
    )


def _missing_slot(st: State, needs: tuple[str, ...]) -> str | None:
    for slot in needs:
        if slot in ("brand", "android_version") and st.get("platform") == "ios":
            continue
        if slot == "platform" and st.get("period") == "today" and "period" in needs:
            continue
        if st.get(slot) is None:
            return slot
    return None


def _item_text(item: ChecklistItem, st: State) -> list[str]:
    if item.steps_from == "brand":
        guide = KB.battery[st.get("brand", "pixel")]
        _note(st, f"battery_{guide.brand}")
        return [_fill(s, st) for s in guide.steps]
    band = _band(st.get("android_version"))
    return [_fill(item.variants.get(band or "", item.text), st)]


def _kind(st: State) -> str:
    return KB.sources[st.get("source", "other")].kind


def _level_steps(st: State, level: int) -> list[str]:
    platform, kind = st["platform"], _kind(st)
    steps: list[str] = []
    if level == 1 and kind == "wearable":
        source = KB.sources[st.get("source", "other")]
        connect = source.connect.get(platform, KB.generic_connect[platform])
        steps.append(_fill(connect, st))
    for item in KB.checklists[platform]:
        if item.level == level and kind in item.applies_to:
            steps += _item_text(item, st)
    return steps[:4]


def _level_card(
    st: State, level: int, prefix: tuple[str, ...], *, offer_human: bool = False
) -> AssistantReply:
    intent = st.setdefault("problem", "steps_not_syncing")
    needs = ("platform", "source") if level == 1 else ("platform", "brand")
    pending = intent if level == 1 and st["level"] < 1 else "escalate"
    slot = _missing_slot(st, needs)
    if slot:
        return _ask(st, slot, pending, prefix)
    if st["platform"] == "android" and _band(st.get("android_version")) == "old":
        st["level"] = max(st["level"], level)
        return _reply(
            st, KB.answers["health_connect_missing.old"], intent, prefix=prefix
        )
    steps = _level_steps(st, level)
    st["level"] = level
    _note(st, f"level{level}_{st['platform']}")
    return _reply(
        st, KB.answers[f"level{level}"], intent, steps=steps, prefix=prefix,
        offer_human=offer_human,
    )  # fmt: skip


def _summary(st: State) -> str:
    parts = []
    if st.get("problem"):
        parts.append(f"problem: {KB.quick_replies[st['problem']].label}")
    if st.get("platform"):
        phone = "iPhone" if st["platform"] == "ios" else "Android"
        if st.get("android_version") and st["platform"] == "android":
            phone += f" {st['android_version']}"
        if st.get("brand") and st["platform"] == "android":
            phone += f" ({KB.battery[st['brand']].label})"
        parts.append(f"phone: {phone}")
    if st.get("source"):
        parts.append(f"source: {_source_label(st)}")
    tried = []
    for name in st["tried"]:
        if name.startswith("level"):
            level = KB.levels[int(name[5]) - 1]
            platform = "iPhone" if name.endswith("ios") else "Android"
            tried.append(
                f"{level.summary.format(platform=platform)} (level {level.level})"
            )
        elif name in KB.quick_replies and name != st.get("problem"):
            tried.append(f"answer on {KB.quick_replies[name].label.lower()}")
    parts.append("tried: " + (", ".join(tried) or "nothing yet"))
    parts.append(f"now: {KB.levels[2].summary} (level 3)")
    return f"{KB.tone['summary_heading']} " + "; ".join(parts) + "."


def _handoff(st: State, prefix: tuple[str, ...] = ()) -> AssistantReply:
    st["level"] = 3
    st.pop("awaiting", None)
    st.pop("pending", None)
    _note(st, "handoff")
    summary = _summary(st)
    return _reply(
        st,
        KB.answers["handoff"],
        st.get("problem", "frustrated"),
        prefix=prefix,
        extra_lines=(summary,),
    )


def _escalate(
    st: State, prefix: tuple[str, ...], *, frustrated: bool
) -> AssistantReply:
    if frustrated:
        prefix = (*prefix, KB.tone["frustration"])
    target = st["level"] + 1
    if target >= 3:
        return _handoff(st, prefix)
    return _level_card(st, target, prefix, offer_human=frustrated)


def _fixed(st: State, prefix: tuple[str, ...] = ()) -> AssistantReply:
    for key in ("problem", "pending", "awaiting", "check", "period"):
        st.pop(key, None)
    st["level"] = 0
    return _reply(st, KB.answers["thanks"], "thanks", prefix=prefix)


def _check_items(st: State) -> list[ChecklistItem]:
    kind = _kind(st) if st.get("source") else None
    return [
        i for i in KB.checklists[st["platform"]]
        if i.question and (kind is None or kind in i.applies_to)
    ]  # fmt: skip


def _check_step(st: State, prefix: tuple[str, ...] = ()) -> AssistantReply:
    items, index = _check_items(st), st.get("check", 0)
    if index >= len(items):
        for key in ("check", "awaiting"):
            st.pop(key, None)
        return _reply(
            st, KB.answers["status_check.done"], "status_check", prefix=prefix
        )
    st["awaiting"], st["check"] = "check", index
    question = _fill(items[index].question, st)
    answer = KB.answers["status_check.question"]
    return _reply(
        st, answer, "status_check", prefix=prefix, extra_lines=(question,),
        n=index + 1, total=len(items),
    )  # fmt: skip


def _check_answer(
    st: State, answer: str, prefix: tuple[str, ...] = ()
) -> AssistantReply:
    if st.get("awaiting") != "check" or not st.get("platform"):
        return _answer_intent(st, "status_check", prefix)
    if answer == "no":
        item = _check_items(st)[st.get("check", 0)]
        fix = " ".join(_item_text(item, st))
        return _reply(
            st, KB.answers["status_check.fix"], "status_check", prefix=prefix, item=fix
        )
    st["check"] = st.get("check", 0) + 1
    return _check_step(st, prefix)


def _variant(intent: str, st: State) -> Answer:
    candidates = [
        st.get("period"),
        _band(st.get("android_version")),
        st.get("platform"),
    ]
    if intent == "health_connect_missing" and st.get("platform") == "ios":
        candidates = ["ios"]
    for variant in candidates:
        if variant and f"{intent}.{variant}" in KB.answers:
            return KB.answers[f"{intent}.{variant}"]
    return KB.answers[intent]


def _answer_intent(
    st: State, intent: str, prefix: tuple[str, ...] = (), *, confident: bool = True
) -> AssistantReply:
    spec = KB.intents[intent]
    if intent == "greeting":
        return _reply(st, KB.answers["greeting"], intent, prefix=prefix)
    if intent == "thanks":
        return _fixed(st, prefix)
    if intent == "unclear":
        return _unclear(st, prefix)
    if spec.kind != "problem" and intent != "status_check":
        return _reply(
            st, KB.answers[intent], intent, prefix=prefix, confident=confident
        )
    if st.get("problem") != intent:
        st["level"] = 0 if st.get("level", 0) < 3 else 3
    st["problem"] = intent
    if intent == "health_connect_missing" and not st.get("platform"):
        st["platform"] = "android"
    slot = _missing_slot(st, spec.needs)
    if slot:
        return _ask(st, slot, intent, prefix)
    _note(st, intent)
    if intent == "steps_not_syncing":
        return _level_card(st, 1, prefix)
    if intent == "status_check":
        st["check"] = 0
        return _check_step(st, prefix)
    answer = _variant(intent, st)
    steps = []
    if answer.steps_from == "brand":
        steps = [_fill(s, st) for s in KB.battery[st.get("brand", "pixel")].steps]
        _note(st, f"battery_{st.get('brand', 'pixel')}")
    return _reply(st, answer, intent, steps=steps, prefix=prefix, confident=confident)


def _unclear(st: State, prefix: tuple[str, ...] = ()) -> AssistantReply:
    slot = st.get("awaiting")
    if slot and slot != "check":
        reply = _ask(st, slot, st.get("pending", "steps_not_syncing"), prefix)
    elif slot == "check":
        reply = _check_step(st, prefix)
    else:
        reply = _reply(st, KB.answers["unclear"], "unclear", prefix=prefix)
    return AssistantReply(
        reply.text, reply.quick_replies, "unclear", False, reply.state
    )


def _continue(st: State, prefix: tuple[str, ...] = ()) -> AssistantReply:
    st.pop("awaiting", None)
    pending = st.pop("pending", None)
    if pending == "escalate":
        return _escalate(st, prefix, frustrated=False)
    if pending:
        return _answer_intent(st, pending, prefix)
    key = "source_noted" if st.get("source") else "platform_noted"
    return _reply(st, KB.answers[key], "unclear", prefix=prefix)


def _set_slot(st: State, slot: str, value: str) -> None:
    st[slot] = int(value) if slot == "android_version" else value
    if slot in ("brand", "android_version") or value in (
        "samsung_health",
        "google_fit",
    ):
        st["platform"] = "android"
    if value == "apple_watch":
        st["platform"] = "ios"


def _on_value(st: State, value: str) -> AssistantReply:
    spec = KB.quick_replies.get(value)
    if spec is None:
        reply = _reply(st, KB.answers["unclear"], "unclear")
        return AssistantReply(
            reply.text, reply.quick_replies, "unclear", False, reply.state
        )
    kind, _, arg = spec.action.partition(":")
    if kind == "intent":
        return _answer_intent(st, arg)
    if kind == "set":
        slot, _, slot_value = arg.partition("=")
        _set_slot(st, slot, slot_value)
        return _continue(st)
    if kind == "escalate":
        return _escalate(st, (), frustrated=False)
    if kind == "fixed":
        return _fixed(st)
    if kind == "human":
        return _handoff(st)
    return _check_answer(st, arg)


def _absorb(st: State, found: intents.Entities) -> tuple[bool, bool]:
    """Store what the text told us; (answers the pending question, found any)."""
    slots = ("platform", "brand", "source", "android_version", "period")
    for slot in slots:
        value = getattr(found, slot)
        if value is not None:
            _set_slot(st, slot, str(value))
    slot = st.get("awaiting")
    answered = bool(slot and slot != "check" and getattr(found, slot) is not None)
    return answered, any(getattr(found, s) is not None for s in slots)


def _on_text(st: State, text: str) -> AssistantReply:
    prefix = (
        (KB.tone["identifiers_removed"],) if intents.PLACEHOLDER_RE.search(text) else ()
    )
    if not intents.normalise(text):
        return _unclear(st, prefix)
    found = intents.extract(text, asked_source=st.get("awaiting") == "source")
    answered, found_any = _absorb(st, found)
    intent, confidence = intents.classify(text)
    if intents.wants_human(text):
        return _handoff(st, prefix)
    if st.get("awaiting") == "check" and (yes := intents.yes_or_no(text)) is not None:
        return _check_answer(st, "yes" if yes else "no", prefix)
    if answered and (
        intent in ("unclear", st.get("pending")) or confidence < CONFIDENT_MIN
    ):
        return _continue(st, prefix)
    tone = intents.is_frustrated_tone(text)
    still = intents.has_class(text, "still") and intent == st.get("problem")
    if intent == "frustrated" or (still and st["level"] >= 1):
        if intent == "frustrated" and not st.get("problem") and st["level"] == 0:
            ack = (*prefix, KB.tone["frustration"])
            return _reply(st, KB.answers["frustrated"], intent, prefix=ack)
        return _escalate(st, prefix, frustrated=tone or intent == "frustrated")
    if tone and intent != "unclear":
        prefix = (*prefix, KB.tone["frustration"])
    if intent == "unclear" and found_any and not st.get("awaiting"):
        return _continue(st, prefix)
    reply = _answer_intent(st, intent, prefix, confident=confidence >= CONFIDENT_MIN)
    confident = reply.confident and confidence >= CONFIDENT_MIN and intent != "unclear"
    return AssistantReply(
        reply.text, reply.quick_replies, reply.intent, confident, reply.state
    )


def respond(
    *, state: Mapping[str, Any], text: str | None = None, quick_reply: str | None = None
) -> AssistantReply:
    """Answer one user turn: a button value (routed by value) or sanitized text."""
    st = _clean_state(state)
    if quick_reply is not None:
        return _on_value(st, quick_reply)
    return _on_text(st, text or "")


def is_quick_reply(value: str) -> bool:
    """True when value is a quick-reply button value from the catalogue."""
    return value in KB.quick_replies


def welcome(state: Mapping[str, Any] | None = None) -> AssistantReply:
    """The first message of a conversation: AI disclosure and the top problems."""
    return _reply(_clean_state(state), KB.answers["greeting"], "greeting")


def fallback(*, state: Mapping[str, Any], text: str) -> AssistantReply:
    """The best rule-based answer when the LLM is unavailable; never empty."""
    reply = respond(state=state, text=text)
    guess = intents.best_guess(text)
    if (
        reply.intent != "unclear"
        or guess == "unclear"
        or _clean_state(state).get("awaiting")
    ):
        return reply
    return _answer_intent(_clean_state(state), guess, confident=False)


def answer_rules() -> tuple[str, ...]:
    """KNOWLEDGE.md's rules for every answer, for the LLM system prompt."""
    return KB.rules


def domain_summary() -> str:
    """Compact domain facts (data flow, checklists, battery guides) for the LLM."""
    lines = list(KB.facts.values())
    for platform, name in (
        ("ios", "iPhone checklist"),
        ("android", "Android checklist"),
    ):
        items = [i.text for i in KB.checklists[platform] if i.level]
        lines.append(f"{name}: " + " | ".join(items))
    guides = [f"{g.label}: {' '.join(g.steps)}" for g in KB.battery.values()]
    lines.append("Android battery settings by brand: " + " | ".join(guides))
    wearables = [
        f"{s.label}: {s.connect.get('android', '')}"
        for s in KB.sources.values()
        if s.connect.get("android")
    ]
    lines.append("Wearables: " + " | ".join(wearables))
    lines.append(
        "Escalation: " + "; ".join(f"{lv.level}. {lv.name}" for lv in KB.levels)
    )
    return (
        "\n".join(lines)
        .replace("{apps}", "the step app and Step Sync")
        .replace("{source}", "the step app")
    )
