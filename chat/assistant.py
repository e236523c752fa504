"""The rule-based troubleshooting dialogue: routes text or buttons to answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chat import intents
from chat.assistant_levels import (
    check_items,
    check_step,
    escalate,
    handoff,
    item_text,
    level_card,
)
from chat.assistant_reply import (
    CONFIDENT_MIN,
    AssistantReply,
    QuickReply,
    State,
    ask,
    clean_state,
    compose,
    fill,
    missing_slot,
    note,
    version_band,
)
from chat.knowledge import KB, Answer

__all__ = [
    "AssistantReply",
    "QuickReply",
    "answer_rules",
    "domain_summary",
    "fallback",
    "is_quick_reply",
    "respond",
    "welcome",
]


def _fixed(st: State, prefix: tuple[str, ...] = ()) -> AssistantReply:
    for key in ("problem", "pending", "awaiting", "check", "period"):
        st.pop(key, None)
    st["level"] = 0
    return compose(st, KB.answers["thanks"], "thanks", prefix=prefix)


def _check_answer(
    st: State, answer: str, prefix: tuple[str, ...] = ()
) -> AssistantReply:
    if st.get("awaiting") != "check" or not st.get("platform"):
        return _answer_intent(st, "status_check", prefix)
    if answer == "no":
        item = check_items(st)[st.get("check", 0)]
        fix = " ".join(item_text(item, st))
        return compose(
            st, KB.answers["status_check.fix"], "status_check", prefix=prefix, item=fix
        )
    st["check"] = st.get("check", 0) + 1
    return check_step(st, prefix)


def _variant(intent: str, st: State) -> Answer:
    candidates = [
        st.get("period"),
        version_band(st.get("android_version")),
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
        return compose(st, KB.answers["greeting"], intent, prefix=prefix)
    if intent == "thanks":
        return _fixed(st, prefix)
    if intent == "unclear":
        return _unclear(st, prefix)
    if spec.kind != "problem" and intent != "status_check":
        return compose(
            st, KB.answers[intent], intent, prefix=prefix, confident=confident
        )
    if st.get("problem") != intent:
        st["level"] = 0 if st.get("level", 0) < 3 else 3
    st["problem"] = intent
    if intent == "health_connect_missing" and not st.get("platform"):
        st["platform"] = "android"
    slot = missing_slot(st, spec.needs)
    if slot:
        return ask(st, slot, intent, prefix)
    note(st, intent)
    if intent == "steps_not_syncing":
        return level_card(st, 1, prefix)
    if intent == "status_check":
        st["check"] = 0
        return check_step(st, prefix)
    answer = _variant(intent, st)
    steps = []
    if answer.steps_from == "brand":
        steps = [fill(s, st) for s in KB.battery[st.get("brand", "pixel")].steps]
        note(st, f"battery_{st.get('brand', 'pixel')}")
    return compose(st, answer, intent, steps=steps, prefix=prefix, confident=confident)


def _unclear(st: State, prefix: tuple[str, ...] = ()) -> AssistantReply:
    slot = st.get("awaiting")
    if slot and slot != "check":
        reply = ask(st, slot, st.get("pending", "steps_not_syncing"), prefix)
    elif slot == "check":
        reply = check_step(st, prefix)
    else:
        reply = compose(st, KB.answers["unclear"], "unclear", prefix=prefix)
    return AssistantReply(
        reply.text, reply.quick_replies, "unclear", False, reply.state
    )


def _continue(st: State, prefix: tuple[str, ...] = ()) -> AssistantReply:
    st.pop("awaiting", None)
    pending = st.pop("pending", None)
    if pending == "escalate":
        return escalate(st, prefix, frustrated=False)
    if pending:
        return _answer_intent(st, pending, prefix)
    key = "source_noted" if st.get("source") else "platform_noted"
    return compose(st, KB.answers[key], "unclear", prefix=prefix)


def _set_slot(st: State, slot: str, value: str) -> None:
    st[slot] = int(value) if slot == "android_version" else value
    if slot in ("brand", "android_version"):
        st["platform"] = "android"
    source = KB.sources.get(value) if slot == "source" else None
    if source is not None and source.platform is not None:
        st["platform"] = source.platform


def _on_value(st: State, value: str) -> AssistantReply:
    spec = KB.quick_replies.get(value)
    if spec is None:
        reply = compose(st, KB.answers["unclear"], "unclear")
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
        return escalate(st, (), frustrated=False)
    if kind == "fixed":
        return _fixed(st)
    if kind == "human":
        return handoff(st)
    return _check_answer(st, arg)


def _absorb(st: State, found: intents.Entities) -> tuple[bool, bool]:
    """Store what the text told us; (answers the pending question, found any)."""
    slots = ("platform", "brand", "source", "android_version", "period")
    for slot in slots:
        value = getattr(found, slot)
        if value is not None:
            _set_slot(st, slot, str(value))
    awaiting = st.get("awaiting")
    answered = bool(
        awaiting and awaiting != "check" and getattr(found, awaiting) is not None
    )
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
        return handoff(st, prefix)
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
            return compose(st, KB.answers["frustrated"], intent, prefix=ack)
        return escalate(st, prefix, frustrated=tone or intent == "frustrated")
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
    st = clean_state(state)
    if quick_reply is not None:
        return _on_value(st, quick_reply)
    with intents.one_turn():
        return _on_text(st, text or "")


def is_quick_reply(value: str) -> bool:
    """True when value is a quick-reply button value from the catalogue."""
    return value in KB.quick_replies


def welcome(state: Mapping[str, Any] | None = None) -> AssistantReply:
    """The first message of a conversation: AI disclosure and the top problems."""
    return compose(clean_state(state), KB.answers["greeting"], "greeting")


def fallback(*, state: Mapping[str, Any], text: str) -> AssistantReply:
    """The best rule-based answer when the LLM is unavailable; never empty."""
    reply = respond(state=state, text=text)
    guess = intents.best_guess(text)
    if (
        reply.intent != "unclear"
        or guess == "unclear"
        or clean_state(state).get("awaiting")
    ):
        return reply
    return _answer_intent(clean_state(state), guess, confident=False)


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
