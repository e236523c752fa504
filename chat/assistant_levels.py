"""The escalation levels and the guided status check of the dialogue."""

from __future__ import annotations

from chat.assistant_reply import (
    AssistantReply,
    State,
    ask,
    compose,
    fill,
    missing_slot,
    note,
    source_label,
    version_band,
)
from chat.knowledge import KB, ChecklistItem


def item_text(item: ChecklistItem, st: State) -> list[str]:
    if item.steps_from == "brand":
        guide = KB.battery[st.get("brand", "pixel")]
        note(st, f"battery_{guide.brand}")
        return [fill(s, st) for s in guide.steps]
    band = version_band(st.get("android_version"))
    return [fill(item.variants.get(band or "", item.text), st)]


def source_kind(st: State) -> str:
    return KB.sources[st.get("source", "other")].kind


def level_steps(st: State, level: int) -> list[str]:
    platform, kind = st["platform"], source_kind(st)
    steps: list[str] = []
    if level == 1 and kind == "wearable":
        source = KB.sources[st.get("source", "other")]
        connect = source.connect.get(platform, KB.generic_connect[platform])
        steps.append(fill(connect, st))
    for item in KB.checklists[platform]:
        if item.level == level and kind in item.applies_to:
            steps += item_text(item, st)
    return steps[:4]


def level_card(
    st: State, level: int, prefix: tuple[str, ...], *, offer_human: bool = False
) -> AssistantReply:
    intent = st.setdefault("problem", "steps_not_syncing")
    needs = ("platform", "source") if level == 1 else ("platform", "brand")
    pending = intent if level == 1 and st["level"] < 1 else "escalate"
    slot = missing_slot(st, needs)
    if slot:
        return ask(st, slot, pending, prefix)
    if st["platform"] == "android" and version_band(st.get("android_version")) == "old":
        st["level"] = max(st["level"], level)
        return compose(
            st, KB.answers["health_connect_missing.old"], intent, prefix=prefix
        )
    steps = level_steps(st, level)
    st["level"] = level
    note(st, f"level{level}_{st['platform']}")
    return compose(
        st, KB.answers[f"level{level}"], intent, steps=steps, prefix=prefix,
        offer_human=offer_human,
    )  # fmt: skip


def handoff_summary(st: State) -> str:
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
        parts.append(f"source: {source_label(st)}")
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


def handoff(st: State, prefix: tuple[str, ...] = ()) -> AssistantReply:
    st["level"] = 3
    st.pop("awaiting", None)
    st.pop("pending", None)
    note(st, "handoff")
    summary = handoff_summary(st)
    return compose(
        st,
        KB.answers["handoff"],
        st.get("problem", "frustrated"),
        prefix=prefix,
        extra_lines=(summary,),
    )


def escalate(st: State, prefix: tuple[str, ...], *, frustrated: bool) -> AssistantReply:
    if frustrated:
        prefix = (*prefix, KB.tone["frustration"])
    target = st["level"] + 1
    if target >= 3:
        return handoff(st, prefix)
    return level_card(st, target, prefix, offer_human=frustrated)


def check_items(st: State) -> list[ChecklistItem]:
    kind = source_kind(st) if st.get("source") else None
    return [
        i for i in KB.checklists[st["platform"]]
        if i.question and (kind is None or kind in i.applies_to)
    ]  # fmt: skip


def check_step(st: State, prefix: tuple[str, ...] = ()) -> AssistantReply:
    items, index = check_items(st), st.get("check", 0)
    if index >= len(items):
        for key in ("check", "awaiting"):
            st.pop(key, None)
        return compose(
            st, KB.answers["status_check.done"], "status_check", prefix=prefix
        )
    st["awaiting"], st["check"] = "check", index
    question = fill(items[index].question, st)
    answer = KB.answers["status_check.question"]
    return compose(
        st, answer, "status_check", prefix=prefix, extra_lines=(question,),
        n=index + 1, total=len(items),
    )  # fmt: skip
